"""Physically remove masked channel groups (Torch-Pruning) and save a generator that loads anywhere."""

import importlib
import io
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from prunegen.pruning import structured as st
from prunegen.pruning.masks import unmasked_copy


def compact(generator: nn.Module, ignore: list[str] = ()) -> nn.Module:
    """A copy of `generator` with every fully masked channel group removed (masks made permanent)."""
    groups = st.channel_groups(generator, ignore)
    dead = {g.root: (~st.kept_channels(generator, g)).nonzero().flatten().tolist() for g in groups}
    plain = unmasked_copy(generator)
    graph = st.dependency_graph(plain)
    for g in groups:
        if dead[g.root]:
            layer = plain.get_submodule(g.root)
            graph.get_pruning_group(layer, graph.get_pruner_of_module(layer).prune_out_channels, dead[g.root]).prune()
    return plain


def generator_spec(generator: nn.Module) -> dict[str, Any]:
    """Constructor arguments (current channel counts included) that rebuild this generator's architecture."""
    cls = type(generator)
    return {"_target_": f"{cls.__module__}.{cls.__qualname__}", **generator.spec()}


def build_from_spec(spec: dict[str, Any]) -> nn.Module:
    module, _, name = spec["_target_"].rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    return cls(**{k: v for k, v in spec.items() if k != "_target_"})


def save_compact(generator: nn.Module, path: str | Path) -> Path:
    """Write {spec, state_dict}: plain tensors and builtins, loadable with `weights_only=True`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"spec": generator_spec(generator), "state_dict": generator.state_dict()}, path)
    return path


def load_compact(path: str | Path, map_location: str = "cpu") -> nn.Module:
    """A generator rebuilt from its recorded channel counts; needs only the network's class."""
    blob = torch.load(path, map_location=map_location, weights_only=True)
    generator = build_from_spec(blob["spec"])
    generator.load_state_dict(blob["state_dict"])
    return generator.eval()


def file_bytes(generator: nn.Module) -> int:
    buf = io.BytesIO()
    torch.save({"spec": generator_spec(generator), "state_dict": generator.state_dict()}, buf)
    return buf.tell()


@torch.no_grad()
def max_abs_diff(a: nn.Module, b: nn.Module, n: int = 64, seed: int = 0) -> float:
    """Largest output difference of two generators on the same fixed latents (eval mode)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, a.latent_dim, generator=g)
    labels = torch.arange(n) % a.num_classes if getattr(a, "num_classes", 0) else None
    a.eval(), b.eval()
    return (a(z, labels) - b(z, labels)).abs().max().item()


@torch.no_grad()
def latency_ms(*generators: nn.Module, batch: int = 256, repeats: int = 10, warmup: int = 2) -> float | list[float]:
    """Median wall time of one batch on the CPU, in milliseconds. Several generators are timed in
    alternation (a, b, a, b, ...), so a noisy machine's drift hits them alike."""
    times: list[list[float]] = [[] for _ in generators]
    inputs = []
    for g in generators:
        g.eval()
        labels = torch.zeros(batch, dtype=torch.long) if getattr(g, "num_classes", 0) else None
        inputs.append((torch.randn(batch, g.latent_dim), labels))
    for i in range(warmup + repeats):
        for g, (z, labels), t in zip(generators, inputs, times):
            start = time.perf_counter()
            g(z, labels)
            if i >= warmup:
                t.append((time.perf_counter() - start) * 1000)
    medians = [statistics.median(t) for t in times]
    return medians[0] if len(medians) == 1 else medians


def prepare_inference(generator: nn.Module, fuse_batchnorm: bool = True, channels_last: bool = True) -> nn.Module:
    """A copy for timing/deployment: BatchNorm folded into the conv before it, channels-last memory."""
    fast = unmasked_copy(generator).eval()
    if fuse_batchnorm:
        for seq in [m for m in fast.modules() if isinstance(m, nn.Sequential)]:
            for i in range(len(seq) - 1):
                conv, bn = seq[i], seq[i + 1]
                if isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)) and isinstance(bn, nn.BatchNorm2d):
                    seq[i] = fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, nn.ConvTranspose2d))
                    seq[i + 1] = nn.Identity()
    return fast.to(memory_format=torch.channels_last) if channels_last else fast
