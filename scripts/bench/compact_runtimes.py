"""Are compact generators as fast as their MACs promise? Dense and compact DCGANs (50% and 75% of the hidden
channels removed, structured, built from a random-init generator with masks: speed does not need trained
weights) under PyTorch eager, torch.compile and ONNX Runtime, all timed in one interleaved loop (1 thread,
batch 256, medians of the process's CPU time: with one thread that is the run's own work, and it does not
move with the other jobs of a shared machine the way wall time does). Prints, per runtime: latency, speedup over the dense model in the same runtime, the
MACs ratio, their quotient (1.0 = the speedup the MACs promise), GMAC/s and the fraction of the core's fp32
peak; then the GMAC/s single layers reach at the compact widths (the limit).

Preparations: `plain` (as compacted), `export` (what prunegen-export times today: BN folded, sub-pixel
output layer, channels-last), `subpixel` (every upsampling layer sub-pixel), `tuned` (deploy/inference.py:
sub-pixel wherever measured faster in eager PyTorch).

    .venv/bin/python scripts/bench/compact_runtimes.py [--batch 256] [--repeats 15] [--runtimes eager compile onnx]
"""

import argparse
import copy
import re
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from prunegen.deploy.inference import prepare_inference, time_module
from prunegen.generator import count_macs, max_abs_diff
from prunegen.models.networks import DCGANGenerator
from prunegen.pruning import PruningCallback
from prunegen.pruning.compact import compact


class _Holder(nn.Module):  # the LightningModule surface the pruning callback needs
    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator


def generators(ngf: int, image_size: int, sparsities: list[float]) -> dict[str, nn.Module]:
    torch.manual_seed(0)
    dense = DCGANGenerator(ngf=ngf, image_size=image_size)
    dense.train()(torch.randn(64, dense.latent_dim))  # BatchNorm statistics that are not the identity
    out = {"dense": dense.eval()}
    for s in sparsities:
        holder = _Holder(DCGANGenerator(ngf=ngf, image_size=image_size))
        holder.generator.load_state_dict(dense.state_dict())
        cb = PruningCallback(granularity="structured", final_sparsity=s)
        cb.setup(None, holder, "fit")
        cb.prune(holder, s)
        small = compact(holder.generator).eval()
        assert max_abs_diff(holder.generator, small) <= 1e-5
        out[f"{s:.0%} removed"] = small
    return out


def prepare(g: nn.Module, how: str, batch: int) -> nn.Module:
    if how == "plain":
        return prepare_inference(g, fuse_batchnorm=False, channels_last=False, subpixel_max_channels=0)
    if how == "export":
        return prepare_inference(g)
    if how == "subpixel":  # every upsampling layer as a 3x3 convolution + PixelShuffle
        return prepare_inference(g, subpixel_max_channels=1 << 20)
    return prepare_inference(g, measure_batch=batch)


def onnx_runner(model: nn.Module, z: torch.Tensor, path: Path):
    import onnxruntime as ort

    torch.onnx.export(model, (z,), str(path), input_names=["z"], output_names=["image"], dynamo=False,
                      dynamic_axes={"z": {0: "batch"}, "image": {0: "batch"}})
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return lambda z: session.run(None, {"z": z.numpy()})[0]


def runners(models: dict[str, nn.Module], runtimes: list[str], z: torch.Tensor, tmp: Path, backend: str = "inductor") -> dict:
    out = {}
    for name, m in models.items():
        if "eager" in runtimes:
            out[("eager", name)] = m
        if "compile" in runtimes:
            compiled = torch.compile(m, backend=backend)
            with torch.no_grad():
                compiled(z)  # compile outside the timed loop
            out[("compile", name)] = compiled
        if "onnx" in runtimes:  # ONNX Runtime picks its own layouts: export the NCHW weights
            nchw = copy.deepcopy(m).to(memory_format=torch.contiguous_format)
            out[("onnx", name)] = onnx_runner(nchw, z, tmp / f"{re.sub(r'[^a-z0-9]+', '_', name)}.onnx")
    return out


@torch.no_grad()
def interleaved(fns: dict, z: torch.Tensor, repeats: int, warmup: int = 2) -> dict:
    times = {k: [] for k in fns}
    for i in range(warmup + repeats):
        for k, fn in fns.items():
            start = time.process_time()
            fn(z)
            if i >= warmup:
                times[k].append(time.process_time() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def peak_gmacs() -> tuple[float, str]:
    """fp32 MACs per second of one core: FMA units x SIMD lanes x clock (cpuinfo's MHz)."""
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    lanes = 16 if " avx512f" in flags else 8 if " avx2" in flags else 4
    mhz = re.search(r"cpu MHz\s*:\s*([\d.]+)", flags)
    ghz = float(mhz.group(1)) / 1000 if mhz else 2.0
    return 2 * lanes * ghz, f"2 FMA x {lanes} fp32 lanes x {ghz:.2f} GHz"


def layer_limit(batch: int, peak: float, repeats: int) -> None:
    """GMAC/s of the generator's middle upsampling layer (8x8 -> 16x16) at the dense and compact widths."""
    print("\nsingle layer ConvTranspose2d(c, c/2, 4, 2, 1) on 8x8 inputs, and its sub-pixel form; BN folded away:")
    for cin in (64, 32, 16, 8):
        layer = nn.ConvTranspose2d(cin, cin // 2, 4, 2, 1, bias=True).eval()
        x = torch.randn(batch, cin, 8, 8).contiguous(memory_format=torch.channels_last)
        macs = batch * 16 * 16 * (cin // 2) * cin * 4
        from prunegen.deploy.inference import subpixel

        for name, m in (("transposed", layer), ("sub-pixel", subpixel(layer))):
            m = m.to(memory_format=torch.channels_last)
            t = time_module(m, x, repeats)
            print(f"  {cin:3d} -> {cin // 2:3d} channels {name:10s} {t * 1000:7.2f} ms  {macs / t / 1e9:6.1f} GMAC/s"
                  f"  {macs / t / 1e9 / peak:6.1%} of peak")


def best_of(med: dict, macs: dict[str, int], batch: int, peak: float) -> None:
    """Each generator in its fastest preparation, per runtime and over all runtimes (what an export would pick)."""
    best: dict[tuple[str, str], tuple[float, str]] = {}
    for (rt, name), t in med.items():
        net, prep = name.split(" / ")
        for key in ((rt, net), ("best", net)):
            if key not in best or t < best[key][0]:
                best[key] = (t, f"{rt}/{prep}" if key[0] == "best" else prep)
    print("\neach generator in its fastest preparation (speedup against the dense model's fastest in the same runtime):")
    for (rt, net), (t, how) in best.items():
        speedup, ratio = best[(rt, "dense")][0] / t, macs["dense"] / macs[net]
        gmacs = macs[net] * batch / t / 1e9
        print(f"{rt:8s} {net:12s} {how:16s} {t * 1000:8.1f} ms  speedup {speedup:5.2f}  MACs ratio {ratio:5.2f}  "
              f"quotient {speedup / ratio:4.2f}  {gmacs:5.1f} GMAC/s  {gmacs / peak:6.1%} of peak")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--ngf", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--sparsities", type=float, nargs="+", default=[0.5, 0.75])
    parser.add_argument("--runtimes", nargs="+", default=["eager", "compile", "onnx"], choices=["eager", "compile", "onnx"])
    parser.add_argument("--prepare", nargs="+", default=["export", "tuned"], choices=["plain", "export", "subpixel", "tuned"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--compile-backend", default="inductor", help="torch.compile backend (eager: the wiring only)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    peak, how = peak_gmacs()
    nets = generators(args.ngf, args.image_size, args.sparsities)
    macs = {k: count_macs(g) for k, g in nets.items()}
    z = torch.randn(args.batch, nets["dense"].latent_dim)
    models = {f"{k} / {p}": prepare(g, p, args.batch) for p in args.prepare for k, g in nets.items()}
    with tempfile.TemporaryDirectory() as tmp:
        fns = runners(models, args.runtimes, z, Path(tmp), args.compile_backend)
        med = interleaved(fns, z, args.repeats)
    print(f"DCGAN ngf={args.ngf} {args.image_size}px, batch {args.batch}, {args.threads} thread(s), median of {args.repeats}, "
          f"core peak {peak:.0f} GMAC/s ({how})")
    print(f"{'runtime':8s} {'generator / preparation':28s} {'ms':>8s} {'speedup':>8s} {'MACs ratio':>10s} {'quotient':>9s} {'GMAC/s':>7s} {'peak':>6s}")
    for (rt, name), t in med.items():
        net, prep = name.split(" / ")
        dense_t = med[(rt, f"dense / {prep}")]
        ratio, speedup = macs["dense"] / macs[net], dense_t / t
        gmacs = macs[net] * args.batch / t / 1e9
        print(f"{rt:8s} {name:28s} {t * 1000:8.1f} {speedup:8.2f} {ratio:10.2f} {speedup / ratio:9.2f} {gmacs:7.1f} {gmacs / peak:6.1%}")
    best_of(med, macs, args.batch, peak)
    layer_limit(args.batch, peak, args.repeats)


if __name__ == "__main__":
    main()
