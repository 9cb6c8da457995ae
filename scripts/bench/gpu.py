"""GPU throughput in one short run (scripts/bench/gpu.sh calls it): training img/s of the digits DCGAN and of
the CIFAR-10 SNGAN configuration (`experiment=paper/gan_lth_sngan_cifar10`, or `model=sngan_resnet`, on
digits as 3-channel 32 px images: CIFAR-10's shapes, no download), compact-generator inference img/s
(eager / torch.compile), and Inception FID img/s against torch-fidelity's on the same images and weights
(a random-init InceptionV3 written to a temporary file; the timing does not depend on the weights' values).

    .venv/bin/python scripts/bench/gpu.py [--device cuda] [--epochs 3] [--sections train infer fid]
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from prunegen import CONFIG_DIR

sys.path.insert(0, str(Path(__file__).parent))
import compact_runtimes  # noqa: E402
import train_overhead  # noqa: E402

SNGAN_PAPER = Path(CONFIG_DIR) / "experiment" / "paper" / "gan_lth_sngan_cifar10.yaml"


def train_cfg(name: str, device: str, epochs: int, limit: float, out: Path, extra: list[str]) -> DictConfig:
    """The composed config of one training measurement: no scoring, export or sample grids."""
    trainer = ["trainer=gpu"] + ([] if device == "cuda" else ["trainer.accelerator=cpu"])  # CPU: the same settings
    if name == "dcgan_digits":
        overrides = ["experiment=digits_dcgan"]
    else:
        base = "experiment=paper/gan_lth_sngan_cifar10" if SNGAN_PAPER.is_file() else "model=sngan_resnet"
        overrides = [base, "pruning=none", "model.n_critic=5", "model.ema_decay=0.999"]
    overrides += [*trainer, f"trainer.limit_train_batches={limit}", *extra]
    cfg = train_overhead.make_cfg(overrides, epochs, out)
    with open_dict(cfg):
        if name != "dcgan_digits":  # CIFAR-10's shapes from the embedded digits: nothing to download
            cfg.pruning = None  # the paper's IMP rounds are not what is timed
            cfg.data = OmegaConf.create({"_target_": "prunegen.data.digits.DigitsDataModule", "image_size": 32,
                                         "channels": 3, "batch_size": cfg.data.batch_size, "val_fraction": 0.0})
    return cfg


def train_throughput(name: str, device: str, epochs: int, limit: float, tmp: Path, extra: list[str]) -> float:
    """Images per second of the training loop (D batches x batch size / epoch time; epoch 0 not counted)."""
    cfg = train_cfg(name, device, epochs, limit, tmp / name, extra)
    train_overhead.EpochClock.instances.clear()
    record, objects = train_overhead.train(cfg)
    clock = train_overhead.EpochClock.instances[-1]
    trainer = objects["trainer"]
    images = trainer.num_training_batches * cfg.data.batch_size
    seconds = statistics.median(wall for _, wall in clock.epochs()[1:] or clock.epochs())  # the GPU works in wall time
    print(f"train  {name:18s} {images / seconds:10.1f} img/s   ({trainer.num_training_batches} batches of "
          f"{cfg.data.batch_size}, {seconds:.2f} s/epoch, precision {trainer.precision})", flush=True)
    return images / seconds


def inference_throughput(device: str, batch: int, repeats: int, backend: str = "inductor") -> dict[str, float]:
    """Generated images per second, dense and compact DCGANs, eager and torch.compile."""
    nets = compact_runtimes.generators(32, 32, [0.5, 0.75])
    z = torch.randn(batch, 64, device=device)
    fns = {}
    for name, g in nets.items():
        g = compact_runtimes.prepare(g, "export", batch).to(device)
        fns[("eager", name)] = g
        compiled = torch.compile(g, backend=backend)
        with torch.no_grad():
            compiled(z)  # compile before timing
        fns[("compile", name)] = compiled
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    out = {}
    for key, fn in fns.items():
        times = []
        for _ in range(repeats + 2):
            sync()
            start = time.perf_counter()
            with torch.no_grad():
                fn(z)
            sync()
            times.append(time.perf_counter() - start)
        out[key] = batch / statistics.median(times[2:])
        print(f"infer  {key[0]:8s} {key[1]:12s} {out[key]:12.0f} img/s (batch {batch})", flush=True)
    return out


def fid_throughput(images: int, batch: int) -> tuple[float, float]:
    """prunegen's Inception scoring vs torch-fidelity's FID, img/s, on the same PNG folders and weights."""
    sys.argv = sys.argv[:1]
    import metrics as metrics_bench

    with tempfile.TemporaryDirectory() as tmp:
        real, fake, weights = metrics_bench.prepare(Path(tmp), images)
        fid_ours, t_ours = metrics_bench.timed(metrics_bench.ours, real, fake, weights, batch)
        fid_theirs, t_theirs = metrics_bench.timed(metrics_bench.theirs, real, fake, weights, batch)
    n = 2 * images
    print(f"fid    prunegen {n / t_ours:10.1f} img/s   torch-fidelity {n / t_theirs:10.1f} img/s   "
          f"ratio {t_theirs / t_ours:.2f}x   FID {fid_ours:.6g} vs {fid_theirs:.6g}", flush=True)
    return n / t_ours, n / t_theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cuda", "cpu"])
    parser.add_argument("--sections", nargs="+", default=["train", "infer", "fid"], choices=["train", "infer", "fid"])
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per model (the first is warm-up)")
    parser.add_argument("--limit-batches", type=float, default=1.0, help="trainer.limit_train_batches")
    parser.add_argument("--infer-batch", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--compile-backend", default="inductor", help="torch.compile backend (eager: the wiring only)")
    parser.add_argument("--fid-images", type=int, default=1000, help="images per folder (both folders are scored)")
    parser.add_argument("--fid-batch", type=int, default=100)
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides of the training runs")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here (use --device cpu)")
    name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(f"device {name}, torch {torch.__version__}", flush=True)
    if args.device == "cpu":
        torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        if "train" in args.sections:
            for model in ("dcgan_digits", "sngan_cifar10"):
                train_throughput(model, args.device, args.epochs, args.limit_batches, Path(tmp), args.overrides)
    if "infer" in args.sections:
        inference_throughput(args.device, args.infer_batch, args.repeats, args.compile_backend)
    if "fid" in args.sections:
        fid_throughput(args.fid_images, args.fid_batch)


if __name__ == "__main__":
    main()
