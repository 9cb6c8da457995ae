"""Importance criteria: small objects `(module, name, stats) -> scores shaped like the parameter`.

Higher scores are kept. Each criterion declares what it `needs`: `weights` (read from the module),
`gradients` (the callback then accumulates, over a round's epoch, `grad_sq` = sum of (dL/dw)^2 and
`grad_w` = sum of w * dL/dw and passes them in `stats`), `timestep_gradients` (the same sums, collected at the
round over a diffusion model's timesteps: `diff_pruning.py`) or `bn_scales` (it scores BatchNorm weights:
channel groups only). Criteria hold no state. `pruning.criterion=NAME` picks one by its `name`;
a `_target_` node builds any other `Criterion`.
"""

import torch
from torch import nn

from prunegen.choices import check_choice
from prunegen.masks import effective_weight

NEEDS = ("weights", "gradients", "timestep_gradients", "bn_scales")


class Criterion:
    """Base: a name for the record and the statistics the callback must collect."""

    name: str = ""
    needs: frozenset[str] = frozenset({"weights"})

    def __call__(self, module: nn.Module, name: str, stats: dict) -> torch.Tensor:
        raise NotImplementedError


class Magnitude(Criterion):
    """|w| (p=1) or w^2 (p=2)."""

    def __init__(self, p: int = 1) -> None:
        if p not in (1, 2):
            raise ValueError(f"pruning.criterion.p must be 1 or 2, got {p}")
        self.p, self.name = p, "magnitude" if p == 1 else "magnitude_l2"

    def __call__(self, module: nn.Module, name: str, stats: dict) -> torch.Tensor:
        return effective_weight(module, name).detach().abs().pow(self.p)


class Random(Criterion):
    """Uniform scores from `stats["seed"]` (reproducible): the control every criterion must beat."""

    name = "random"

    def __call__(self, module: nn.Module, name: str, stats: dict) -> torch.Tensor:
        w = effective_weight(module, name)
        g = torch.Generator().manual_seed(int(stats.get("seed", 0)))
        return torch.rand(w.shape, generator=g).to(w.device)


class Gradient(Criterion):
    """The seed document's contribution score C = sum over the epoch of (dL/dw)^2."""

    name, needs = "gradient", frozenset({"gradients"})

    def __call__(self, module: nn.Module, name: str, stats: dict) -> torch.Tensor:
        return stats["grad_sq"]


class Taylor(Criterion):
    """First-order Taylor |sum w * dL/dw| (Molchanov et al. 2019)."""

    name, needs = "taylor", frozenset({"weights", "gradients"})

    def __call__(self, module: nn.Module, name: str, stats: dict) -> torch.Tensor:
        return stats["grad_w"].abs()


class DiffPruning(Criterion):
    """Diff-Pruning's Taylor importance |sum w * dL/dw| over the timesteps its rule selects (`diff_pruning.py`):
    the callback collects `grad_w` at the round from one batch of `batch_size` training images (None: the
    training batch size), stopping once the denoising loss falls below `threshold` x its maximum."""

    name, needs = "diff_pruning", frozenset({"weights", "timestep_gradients"})

    def __init__(self, threshold: float = 0.05, batch_size: int | None = None) -> None:
        if not 0 < threshold < 1:
            raise ValueError(f"pruning.criterion.threshold must be in (0, 1) (Diff-Pruning's default 0.05), got {threshold}")
        self.threshold, self.batch_size = threshold, batch_size

    def __call__(self, module: nn.Module, name: str, stats: dict) -> torch.Tensor:
        return stats["grad_w"].abs()


class BNScale(Criterion):
    """|gamma| of a BatchNorm (network slimming, Liu et al. 2017); channel groups only."""

    name, needs = "bn_scale", frozenset({"bn_scales"})

    def __call__(self, module: nn.Module, name: str, stats: dict) -> torch.Tensor:
        return effective_weight(module, name).detach().abs()


BY_NAME = {c.name: c for c in (Magnitude(1), Magnitude(2), Random(), Gradient(), Taylor(), DiffPruning(), BNScale())}


def resolve(criterion: "str | Criterion") -> Criterion:
    """A criterion object from a name (`pruning.criterion=taylor`) or the object itself."""
    if isinstance(criterion, Criterion):
        return criterion
    check_choice("pruning.criterion", criterion, BY_NAME, extra="or a Criterion")
    return BY_NAME[criterion]
