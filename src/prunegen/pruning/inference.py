"""Fast inference copies of a (compact) generator: BatchNorm folding, sub-pixel rewrites of transposed
convolutions where they are measured to be faster, channels-last memory, and SIMD-friendly widths.

`compact.prepare_inference` rewrites only narrow output layers (<= 4 channels); `fast_inference` decides
per layer by timing both forms at the layer's real input shape, because which one wins depends on the
widths and the batch (measured here: sub-pixel ~2x faster for a 1-channel output, slower for wide
layers under oneDNN's transposed-conv kernels).
"""

import math
import statistics
import time

import torch
from torch import nn

from prunegen.pruning.compact import _is_upsampling_4x4, prepare_inference, subpixel


@torch.no_grad()
def time_module(module: nn.Module, x: torch.Tensor, repeats: int = 5, warmup: int = 1) -> float:
    """Median CPU seconds of one forward of `module` on `x` (this process's CPU time: with the one thread
    deployment runs use, it is the module's own work, robust to other jobs sharing the machine)."""
    times = []
    for i in range(warmup + repeats):
        start = time.process_time()
        module(x)
        if i >= warmup:
            times.append(time.process_time() - start)
    return statistics.median(times)


def _layer_inputs(model: nn.Module, example: tuple, layers: list[nn.Module]) -> dict[nn.Module, torch.Tensor]:
    """The input tensor each of `layers` receives when `model` runs on `example`."""
    seen: dict[nn.Module, torch.Tensor] = {}
    hooks = [m.register_forward_pre_hook(lambda m, args: seen.setdefault(m, args[0].detach())) for m in layers]
    try:
        with torch.no_grad():
            model(*example)
    finally:
        for h in hooks:
            h.remove()
    return seen


def choose_subpixel(model: nn.Module, example: tuple, channels_last: bool = True, repeats: int = 5) -> nn.Module:
    """Replace each ConvTranspose2d(k=4, s=2, p=1) of `model` (in place) by its sub-pixel form where that is
    measured faster at the input shape of `example` (usually the deployment batch). Returns `model`."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    seqs = [s for s in model.modules() if isinstance(s, nn.Sequential)]
    layers = [m for s in seqs for m in s if _is_upsampling_4x4(m)]
    inputs = _layer_inputs(model, example, layers)
    for seq in seqs:
        for i, layer in enumerate(seq):
            if layer not in inputs:
                continue
            x = inputs[layer].contiguous(memory_format=fmt)
            alt = subpixel(layer).to(memory_format=fmt)
            if time_module(alt, x, repeats) < time_module(layer.to(memory_format=fmt), x, repeats):
                seq[i] = alt
    return model


def fast_inference(generator: nn.Module, batch: int = 256, channels_last: bool = True, measure: bool = True) -> nn.Module:
    """An eval-mode copy for deployment: BatchNorm folded, upsampling layers as sub-pixel convolutions where
    measured faster at `batch` (only the <= 4-channel output layer when `measure` is False), channels-last."""
    fast = prepare_inference(generator, fuse_batchnorm=True, channels_last=channels_last,
                             subpixel_max_channels=4 if not measure else 0)
    if measure:
        z = torch.randn(batch, generator.latent_dim)
        labels = torch.zeros(batch, dtype=torch.long) if getattr(generator, "num_classes", 0) else None
        choose_subpixel(fast, (z, labels), channels_last)
    return fast.to(memory_format=torch.channels_last) if channels_last else fast


def round_widths(widths: list[int], multiple: int, mode: str = "nearest") -> list[int]:
    """Channel counts rounded to a multiple (the SIMD width: 16 fp32 lanes on AVX-512), at least `multiple`."""
    fn = {"nearest": lambda x: math.floor(x + 0.5), "up": math.ceil, "down": math.floor}[mode]
    return [max(multiple, multiple * fn(w / multiple)) for w in widths]


def choose_round_to(build, widths: list[int], candidates: tuple[int, ...] = (1, 4, 8, 16), batch: int = 256,
                    repeats: int = 5) -> tuple[int, dict[int, float]]:
    """The latency-aware `round_to`: rebuild the generator (`build(widths)`) at the widths rounded to each
    candidate multiple and keep the one with the lowest measured time per image *per MAC kept* (rounding
    up buys MACs; it is worth it only when it costs less time than it adds work). Returns (best, {r: s/MAC})."""
    from prunegen.models.profile import count_macs

    cost = {}
    for r in candidates:
        plain = build(round_widths(widths, r))
        macs = count_macs(plain)
        g = fast_inference(plain, batch, measure=False)
        z = torch.randn(batch, g.latent_dim)
        cost[r] = time_module(lambda z: g(z), z, repeats) / (batch * macs)
    return min(cost, key=cost.get), cost
