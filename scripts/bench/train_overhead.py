"""What does prunegen cost per training epoch beyond the math? `prunegen.train.train(cfg)` against a plain
PyTorch loop over the same instantiated networks, optimizers, EMA and data order, one thread, runs
interleaved (prunegen, plain, prunegen, ...), medians of the per-epoch times (epoch 0 is warm-up).

Scenarios: `dense` (experiment=dense_digits), `taylor` (the same with structured Taylor pruning rounds at
the end of epochs 1..4: gradient hooks, masks; against the plain *unpruned* loop) and `distill`
(experiment=compress_digits: one-shot 50% at epoch 0, then output distillation; against a plain L1
distillation loop). `--profile` prints where a prunegen run spends its time (cProfile, own time).

    .venv/bin/python scripts/bench/train_overhead.py [--scenarios dense taylor distill] [--repeats 5] [--epochs 6]
"""

import argparse
import copy
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, open_dict

from prunegen import CONFIG_DIR
from prunegen.models.ema import update_ema
from prunegen.train import train

SCENARIOS = {
    "dense": ["experiment=dense_digits"],
    "taylor": ["experiment=dense_digits", "pruning=structured", "pruning.criterion=taylor", "pruning.start_epoch=1",
               "pruning.end_epoch=4", "pruning.final_sparsity=0.5"],
    "distill": ["experiment=compress_digits", "pruning.start_epoch=0", "pruning.end_epoch=0"],
}


class EpochClock(Callback):
    """Wall time from each epoch start to the next one (or to the end of training): the epoch's steps, its
    end-of-epoch hooks and its checkpoint."""

    instances: list["EpochClock"] = []

    def __init__(self) -> None:
        self.stamps: list[float] = []
        EpochClock.instances.append(self)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.stamps.append(time.perf_counter())

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.stamps.append(time.perf_counter())

    def epochs(self) -> list[float]:
        return [b - a for a, b in zip(self.stamps, self.stamps[1:])]


def make_cfg(overrides: list[str], epochs: int, out: Path, extra: list[str] = ()) -> DictConfig:
    base = [f"trainer.max_epochs={epochs}", "trainer.enable_progress_bar=false", "export=none",
            "callbacks.sample_grid=null", "num_threads=1"]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[*overrides, *base, *extra])
    with open_dict(cfg):
        cfg.metrics = None  # scoring is not training
        cfg.paths.output_dir = str(out)
        cfg.paths.cache_dir = str(out.parent / "cache")
        cfg.callbacks.epoch_clock = {"_target_": f"{__name__}.EpochClock"}
    return cfg


def prunegen_epochs(cfg: DictConfig) -> list[float]:
    EpochClock.instances.clear()
    train(cfg)
    return EpochClock.instances[-1].epochs()


def _ema_decay(model, step: int) -> float:
    return min(model.hparams.ema_decay, (1 + step) / (10 + step))


def plain_epochs(cfg: DictConfig, distill: bool) -> list[float]:
    """The same math without Lightning: D step + G step + EMA, or (from epoch 1) L1 distillation of G from a
    frozen copy of it (the teacher, snapshotted at the end of epoch 0 like the callback's)."""
    torch.set_num_threads(cfg.num_threads)
    L.seed_everything(cfg.seed, workers=True)
    dm, model = instantiate(cfg.data), instantiate(cfg.model)
    dm.setup("fit")
    G, D, ema = model.generator.train(), model.discriminator.train(), getattr(model, "ema", None)
    (opt_g, opt_d), _ = model.configure_optimizers()  # [G, D] optimizers, [G's lr plan]
    loader, step, times, teacher = dm.train_dataloader(), 0, [], None
    for epoch in range(cfg.trainer.max_epochs):
        start = time.perf_counter()
        for x, _ in loader:
            z = torch.randn(x.shape[0], G.latent_dim)
            if teacher is None:
                d_loss = model.d_loss_fn(D(x), D(G(z).detach()))
                opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                opt_d.step()
                g_loss = model.g_loss_fn(D(G(z)))
            else:
                with torch.no_grad():
                    target = teacher(z)
                g_loss = F.l1_loss(G(z), target)
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            if ema is not None:
                update_ema(ema, G, _ema_decay(model, step))
            step += 1
        if distill and teacher is None:
            teacher = copy.deepcopy(ema if ema is not None else G).eval().requires_grad_(False)
            opt_g.state.clear()
        times.append(time.perf_counter() - start)
    return times


def compare(name: str, repeats: int, epochs: int, root: Path) -> dict[str, float]:
    ours, plain = [], []
    for r in range(repeats):
        ours += prunegen_epochs(make_cfg(SCENARIOS[name], epochs, root / f"{name}{r}"))[1:]
        plain += plain_epochs(make_cfg(SCENARIOS[name], epochs, root / f"plain{r}"), distill=name == "distill")[1:]
    o, p = statistics.median(ours), statistics.median(plain)
    print(f"{name:8s} prunegen {o * 1000:7.1f} ms/epoch   plain {p * 1000:7.1f} ms/epoch   ratio {o / p:.3f}"
          f"   (epochs 1..{epochs - 1} x {repeats} runs)", flush=True)
    return {"prunegen_s": o, "plain_s": p, "ratio": o / p}


def profile(name: str, epochs: int, root: Path, top: int) -> None:
    cfg = make_cfg(SCENARIOS[name], epochs, root / f"profile-{name}")
    prof = cProfile.Profile()
    prof.runcall(train, cfg)
    print(f"--- {name}: top {top} functions by own time over {epochs} epochs (setup included)")
    pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    parser.add_argument("--repeats", type=int, default=5, help="interleaved runs per side")
    parser.add_argument("--epochs", type=int, default=6, help="epochs per run (the first is not counted)")
    parser.add_argument("--profile", action="store_true", help="also profile one prunegen run per scenario")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for both sides (e.g. data.batch_size=16)")
    args = parser.parse_args()
    SCENARIOS.update({k: [*v, *args.overrides] for k, v in SCENARIOS.items()})
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.scenarios:
            compare(name, args.repeats, args.epochs, Path(tmp))
            if args.profile:
                profile(name, args.epochs, Path(tmp), args.top)


if __name__ == "__main__":
    main()
