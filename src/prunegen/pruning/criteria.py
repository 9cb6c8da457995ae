"""Importance criteria: pure callables `(module, name, stats) -> scores shaped like the weight`.

Higher scores are kept. `stats` holds what the callback accumulated over the epoch for this parameter:
`grad_sq` = sum of (dL/dw)^2, `grad_w` = sum of w * dL/dw, and `seed` for reproducible random scores.
"""

import torch
from torch import nn

from prunegen.pruning.masks import effective_weight


def magnitude(module: nn.Module, name: str, stats: dict) -> torch.Tensor:
    return effective_weight(module, name).detach().abs()


def magnitude_l2(module: nn.Module, name: str, stats: dict) -> torch.Tensor:
    return effective_weight(module, name).detach().pow(2)


def random(module: nn.Module, name: str, stats: dict) -> torch.Tensor:
    w = effective_weight(module, name)
    g = torch.Generator().manual_seed(int(stats.get("seed", 0)))
    return torch.rand(w.shape, generator=g).to(w.device)


def gradient(module: nn.Module, name: str, stats: dict) -> torch.Tensor:
    """The seed document's contribution score C = sum over the epoch of (dL/dw)^2."""
    return stats["grad_sq"]


def taylor(module: nn.Module, name: str, stats: dict) -> torch.Tensor:
    """First-order Taylor |sum w * dL/dw| (Molchanov et al. 2019)."""
    return stats["grad_w"].abs()


def bn_scale(module: nn.Module, name: str, stats: dict) -> torch.Tensor:
    """|gamma| of a BatchNorm (network slimming, Liu et al. 2017); structured pruning only."""
    return effective_weight(module, name).detach().abs()


CRITERIA = {
    "magnitude": magnitude,
    "magnitude_l2": magnitude_l2,
    "random": random,
    "gradient": gradient,
    "taylor": taylor,
    "bn_scale": bn_scale,
}
NEEDS_GRADIENTS = {"gradient", "taylor"}
