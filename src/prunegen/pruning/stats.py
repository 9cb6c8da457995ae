"""Gradient statistics of the pruned layers, accumulated through parameter hooks over a round's epoch.

Per layer path: `grad_sq` = sum of (dL/dw)^2 and `grad_w` = sum of w * dL/dw (w the masked weight), shaped
like the weight. The `gradient` and `taylor` criteria read them (see `criteria.py`). No Lightning here: the
callback decides when to collect and passes the DDP reduction in.
"""

from collections.abc import Callable, Mapping

import torch
from torch import nn

from prunegen.masks import effective_weight, trainable

LayerStats = dict[str, torch.Tensor]  # {"grad_sq": ..., "grad_w": ...}


class GradientStatistics:
    """Sums of grad^2 and w*grad per layer path; its state is `{path: {"grad_sq", "grad_w"}}`."""

    def __init__(self) -> None:
        self.sums: dict[str, LayerStats] = {}
        self._hooks: list[torch.utils.hooks.RemovableHandle] = []

    def install(self, layers: Mapping[str, nn.Module]) -> None:
        """Start from zero and accumulate every backward pass through the weights of `layers` (path -> layer)."""
        self.remove()
        self.sums = {}
        for path, layer in layers.items():
            param = trainable(layer)
            stats = self.sums[path] = {"grad_sq": torch.zeros_like(param), "grad_w": torch.zeros_like(param)}

            def hook(grad: torch.Tensor, layer: nn.Module = layer, stats: LayerStats = stats) -> None:
                stats["grad_sq"] += grad.detach() ** 2
                stats["grad_w"] += effective_weight(layer).detach() * grad.detach()

            self._hooks.append(param.register_hook(hook))

    def remove(self) -> None:
        """Stop accumulating (the sums are kept)."""
        for handle in self._hooks:
            handle.remove()
        self._hooks = []

    def reduce(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Replace every sum by `fn(sum)`: under DDP, the sum over ranks, so every rank scores the same."""
        for stats in self.sums.values():
            for key, value in stats.items():
                stats[key] = fn(value)

    def check_nonzero(self, criterion: str, epoch: int) -> None:
        """Raise if no gradient reached the layers: every gradient-based score would be zero."""
        if not any(s["grad_sq"].any() for s in self.sums.values()):
            raise RuntimeError(
                f"pruning.criterion={criterion!r} needs the generator's gradients, but they were all zero over "
                f"epoch {epoch} (no loss reached its weights), so every score would be zero; nothing was pruned. "
                f"Prune at an epoch where the generator is trained, or use pruning.criterion=magnitude|bn_scale|random"
            )

    def for_layer(self, path: str) -> LayerStats:
        """The sums of one layer; empty when none were collected for it."""
        return self.sums.get(path, {})

    def state_dict(self) -> dict[str, LayerStats]:
        return self.sums

    def load_state_dict(self, state: Mapping[str, Mapping[str, torch.Tensor]]) -> None:
        self.sums = {path: dict(stats) for path, stats in state.items()}
