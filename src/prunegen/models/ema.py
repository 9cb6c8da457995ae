"""An exponential moving average of the generator's weights, kept in step with its pruning masks.

The EMA copy is a plain module beside the generator (`model.ema`, never under `model.generator`),
so pruning targets, masks and `prunable_layers(model, ["generator"])` see only the trained generator.
It averages the generator's *effective* (masked) weights and is multiplied by the generator's masks
after every update and before sampling, so it always has exactly the generator's zeros.
"""

import copy

import torch
from torch import nn

from prunegen.masks import effective_weight, module_masks, param_key, share_alive_channels


def make_ema(generator: nn.Module) -> nn.Module:
    """A frozen copy of `generator` (call before any pruning: the copy holds plain weights)."""
    ema = copy.deepcopy(generator).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    return ema


def _pairs(ema: nn.Module, generator: nn.Module):
    yield from zip(ema.modules(), generator.modules(), strict=True)


@torch.no_grad()
def apply_masks(ema: nn.Module, generator: nn.Module) -> None:
    """Zero the EMA weights that the generator's masks remove (a masked GroupNorm's copy then normalises the
    same alive channels)."""
    for m_ema, m in _pairs(ema, generator):
        for name, mask in module_masks(m).items():
            m_ema._parameters[name].mul_(mask)
            if name == "weight":
                share_alive_channels(m_ema, mask)


@torch.no_grad()
def update_ema(ema: nn.Module, generator: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * generator (effective weights); buffers (BN statistics) copied."""
    for m_ema, m in _pairs(ema, generator):
        for name, p in m_ema._parameters.items():
            if p is not None:
                p.lerp_(effective_weight(m, name), 1 - decay)
        for name, buf in m_ema._buffers.items():
            if buf is not None:
                buf.copy_(m._buffers[name])
    apply_masks(ema, generator)


@torch.no_grad()
def load_ema_into(generator: nn.Module, ema: nn.Module) -> None:
    """Overwrite the generator's trainable weights (under a mask too) and BN statistics with the EMA's."""
    apply_masks(ema, generator)
    for m_ema, m in _pairs(ema, generator):
        for name, p in m._parameters.items():
            if p is not None:
                p.copy_(m_ema._parameters[param_key(name)])
        for name, buf in m_ema._buffers.items():
            if buf is not None:
                m._buffers[name].copy_(buf)
