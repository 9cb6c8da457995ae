"""The compact generator file: {spec, state_dict} (plain tensors and builtins, loadable with
`weights_only=True`; the network is rebuilt from the channel counts recorded in its spec, and where its spec
cannot express them, as a pruned UNet's per-layer widths, from the shapes in its state dict), and a bitmask
codec for the sparse storage of unstructured-pruned weights.

    from prunegen.deploy.compact import load_compact
    G = load_compact("generator_compact.pt")   # needs only the network's class
"""

import io
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from prunegen.generator import build_from_spec, generator_spec


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
    fit_shapes(generator, blob["state_dict"])
    generator.load_state_dict(blob["state_dict"])
    return generator.eval()


def fit_shapes(generator: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Give `generator`'s parameters and buffers the shapes of `state_dict` (channels removed), and its layers
    the channel counts that go with them (then the network's own `compacted`, for attributes beside them)."""
    changed = False
    for key, t in state_dict.items():
        path, _, name = key.rpartition(".")
        module = generator.get_submodule(path)
        current = getattr(module, name, None)
        if current is None or current.shape == t.shape:
            continue
        changed = True
        fresh = torch.empty(t.shape, dtype=current.dtype, device=current.device)
        if isinstance(current, nn.Parameter):
            setattr(module, name, nn.Parameter(fresh, requires_grad=current.requires_grad))
        else:
            module.register_buffer(name, fresh)
    if not changed:
        return
    for m in generator.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            a, b = m.weight.shape[:2]
            m.in_channels, m.out_channels = (a, b * m.groups) if m.transposed else (b * m.groups, a)
        elif isinstance(m, nn.Linear):
            m.out_features, m.in_features = m.weight.shape
        elif isinstance(m, nn.GroupNorm) and m.affine:
            m.num_channels = m.weight.shape[0]
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.num_features = (m.weight if m.affine else m.running_mean).shape[0]
    if hasattr(generator, "compacted"):
        generator.compacted()


def file_bytes(generator: nn.Module) -> int:
    buf = io.BytesIO()
    torch.save({"spec": generator_spec(generator), "state_dict": generator.state_dict()}, buf)
    return buf.tell()


BITS = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8)


def bitmask_encode(state_dict: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Sparse storage of a (masked, plain) state dict: every weight with >= 2 dims as a packed bitmask of its
    nonzeros (1 bit per weight) plus the nonzero values; everything else as it is."""
    out: dict[str, Any] = {}
    for key, t in state_dict.items():
        if t.is_floating_point() and t.dim() >= 2:
            nz = t.flatten() != 0
            bits = torch.cat([nz, nz.new_zeros(-nz.numel() % 8)]).view(-1, 8).to(torch.uint8)
            out[key] = {"shape": list(t.shape), "bits": (bits * BITS).sum(1).to(torch.uint8), "values": t.flatten()[nz]}
        else:
            out[key] = t
    return out


def bitmask_decode(blob: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The state dict `bitmask_encode` stored."""
    out = {}
    for key, v in blob.items():
        if isinstance(v, dict):
            n = math.prod(v["shape"])
            nz = ((v["bits"][:, None] & BITS) != 0).flatten()[:n]
            dense = v["values"].new_zeros(n)
            dense[nz] = v["values"]
            out[key] = dense.view(v["shape"])
        else:
            out[key] = v
    return out
