"""Inference copies of a (compact) generator and their timing: BatchNorm folding, sub-pixel rewrites of
transposed convolutions, channels-last memory, SIMD-friendly widths.

`prepare_inference` is the one builder: by default it rewrites only narrow output layers (<= 4 channels);
with `measure_batch` it decides per layer by timing both forms at the layer's real input shape, because
which one wins depends on the widths and the batch (measured here: sub-pixel ~2x faster for a 1-channel
output, slower for wide layers under oneDNN's transposed-conv kernels).
"""

import math
import statistics
import time

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from prunegen.generator import count_macs, example_inputs
from prunegen.masks import unmasked_copy


@torch.no_grad()
def latency_ms(*generators: nn.Module, batch: int = 256, repeats: int = 10, warmup: int = 2) -> float | list[float]:
    """Median wall time of one batch on the CPU, in milliseconds. Several generators are timed in
    alternation (a, b, a, b, ...), so a noisy machine's drift hits them alike."""
    times: list[list[float]] = [[] for _ in generators]
    inputs = []
    for g in generators:
        g.eval()
        inputs.append(example_inputs(g, batch, device="cpu", labels="zeros"))
    for i in range(warmup + repeats):
        for g, (z, labels), t in zip(generators, inputs, times):
            start = time.perf_counter()
            g(z, labels)
            if i >= warmup:
                t.append((time.perf_counter() - start) * 1000)
    medians = [statistics.median(t) for t in times]
    return medians[0] if len(medians) == 1 else medians


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


_TAPS = ({0: 3, 1: 1}, {1: 2, 2: 0})  # output parity -> {3x3 tap: 4x4 transposed-kernel index}


def subpixel(layer: nn.ConvTranspose2d) -> nn.Sequential:
    """The same map as a ConvTranspose2d(k=4, s=2, p=1), as a 3x3 convolution to 4x the channels and a
    PixelShuffle(2). Measured on this CPU: ~2x faster for 1-channel outputs, slower for wide layers."""
    cin, cout = layer.in_channels, layer.out_channels
    kernel = torch.zeros(cout, 2, 2, cin, 3, 3)
    for ry in (0, 1):
        for rx in (0, 1):
            for ty, ky in _TAPS[ry].items():
                for tx, kx in _TAPS[rx].items():
                    kernel[:, ry, rx, :, ty, tx] = layer.weight.detach()[:, :, ky, kx].t()
    conv = nn.Conv2d(cin, cout * 4, 3, 1, 1, bias=layer.bias is not None)
    conv.weight.data = kernel.reshape(cout * 4, cin, 3, 3)
    if layer.bias is not None:
        conv.bias.data = layer.bias.detach().repeat_interleave(4)
    return nn.Sequential(conv, nn.PixelShuffle(2))


def _is_upsampling_4x4(m: nn.Module) -> bool:
    return (isinstance(m, nn.ConvTranspose2d) and m.kernel_size == (4, 4) and m.stride == (2, 2)
            and m.padding == (1, 1) and m.groups == 1 and m.dilation == (1, 1) and m.output_padding == (0, 0))


def prepare_inference(generator: nn.Module, fuse_batchnorm: bool = True, channels_last: bool = True,
                      subpixel_max_channels: int = 4, measure_batch: int | None = None) -> nn.Module:
    """An eval-mode copy for timing and deployment: BatchNorm folded into the conv before it, upsampling
    layers as sub-pixel convolutions, channels-last memory. Which layers become sub-pixel: those with
    <= `subpixel_max_channels` outputs (the RGB/grey output layer), or, with `measure_batch`, each one where
    that is measured faster at that batch."""
    fast = unmasked_copy(generator).eval()
    limit = 0 if measure_batch else subpixel_max_channels
    for seq in [m for m in fast.modules() if isinstance(m, nn.Sequential)]:
        for i, layer in enumerate(seq):
            if _is_upsampling_4x4(layer) and layer.out_channels <= limit:
                seq[i] = subpixel(layer)
    if fuse_batchnorm:
        for seq in [m for m in fast.modules() if isinstance(m, nn.Sequential)]:
            for i in range(len(seq) - 1):
                conv, bn = seq[i], seq[i + 1]
                if isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)) and isinstance(bn, nn.BatchNorm2d):
                    seq[i] = fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, nn.ConvTranspose2d))
                    seq[i + 1] = nn.Identity()
    if measure_batch:
        z, labels = example_inputs(fast, measure_batch, device="cpu", labels="zeros")
        choose_subpixel(fast, (z, labels), channels_last)
    return fast.to(memory_format=torch.channels_last) if channels_last else fast


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


def round_widths(widths: list[int], multiple: int, mode: str = "nearest") -> list[int]:
    """Channel counts rounded to a multiple (the SIMD width: 16 fp32 lanes on AVX-512), at least `multiple`."""
    fn = {"nearest": lambda x: math.floor(x + 0.5), "up": math.ceil, "down": math.floor}[mode]
    return [max(multiple, multiple * fn(w / multiple)) for w in widths]


def choose_round_to(build, widths: list[int], candidates: tuple[int, ...] = (1, 4, 8, 16), batch: int = 256,
                    repeats: int = 5) -> tuple[int, dict[int, float]]:
    """The latency-aware `round_to`: rebuild the generator (`build(widths)`) at the widths rounded to each
    candidate multiple and keep the one with the lowest measured time per image *per MAC kept* (rounding
    up buys MACs; it is worth it only when it costs less time than it adds work). Returns (best, {r: s/MAC})."""
    cost = {}
    for r in candidates:
        plain = build(round_widths(widths, r))
        macs = count_macs(plain)
        g = prepare_inference(plain)
        z = torch.randn(batch, g.latent_dim)
        cost[r] = time_module(g, z, repeats) / (batch * macs)
    return min(cost, key=cost.get), cost
