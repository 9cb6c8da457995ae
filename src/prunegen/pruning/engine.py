"""The pruning engine: scores -> keep -> masks. A criterion scores the units of a strategy (weights or channel
groups), and a round keeps the best ones, to a target sparsity or above a threshold. No Lightning here: the
callbacks decide when a round happens and what is logged."""

from typing import Any

import torch
from torch import nn

from prunegen.masks import prunable_layers
from prunegen.pruning.criteria import Criterion
from prunegen.pruning.stats import GradientStatistics
from prunegen.pruning.structured import ChannelMasks
from prunegen.pruning.threshold import references, threshold_keep
from prunegen.pruning.unstructured import Units, WeightMasks

Strategy = WeightMasks | ChannelMasks


def mask_strategy(granularity: str, targets: list[str], ignore: list[str], scope: str,
                  min_keep: float = 0.0, round_to: int = 1) -> Strategy:
    """Channel groups (`structured`) or single weights (`unstructured`) of the targets as the units."""
    if granularity == "structured":
        return ChannelMasks(targets, ignore, scope, min_keep, round_to)
    return WeightMasks(targets, ignore, scope, min_keep)


class PruningEngine:
    """A criterion and a strategy; `alpha`, `reference` and `max_sparsity` set the threshold rule."""

    def __init__(self, criterion: Criterion, strategy: Strategy, alpha: float = 1.0, reference: str = "mean",
                 max_sparsity: float | None = None) -> None:
        self.criterion, self.strategy = criterion, strategy
        self.alpha, self.reference, self.max_sparsity = alpha, reference, max_sparsity

    @property
    def needs_gradients(self) -> bool:
        return "gradients" in self.criterion.needs

    def setup(self, module: nn.Module) -> None:
        """Find the units of `module` (the channel groups, when structured)."""
        self.strategy.setup(module)

    def layers(self, module: nn.Module) -> dict[str, nn.Module]:
        """The target conv/linear layers by path (those the statistics watch)."""
        return prunable_layers(module, self.strategy.targets, self.strategy.ignore)

    def scores(self, module: nn.Module, stats: GradientStatistics | None = None, seed: int = 0) -> tuple[Units, Units]:
        """(scores, alive) per layer or channel group; `seed` makes the random criterion reproducible."""
        def score(layer: nn.Module, path: str, name: str) -> torch.Tensor:
            collected = stats.for_layer(path) if stats is not None else {}
            return self.criterion(layer, name, {**collected, "seed": seed * 7919 + sum(map(ord, f"{path}.{name}"))})

        if isinstance(self.strategy, ChannelMasks):
            return self.strategy.scores(module, score, bn="bn_scales" in self.criterion.needs)
        return self.strategy.scores(module, score)

    def prune_to(self, module: nn.Module, sparsity: float, stats: GradientStatistics | None = None,
                 seed: int = 0) -> dict[str, Any]:
        """Every target layer (or all together) to `sparsity`; returns the round's part of the record."""
        scores, alive = self.scores(module, stats, seed)
        self.strategy.apply(module, self.strategy.select(scores, alive, sparsity))
        return {"target": sparsity}

    def prune_threshold(self, module: nn.Module, stats: GradientStatistics | None = None,
                        seed: int = 0) -> dict[str, Any]:
        """Mask the alive units scoring below alpha x reference; returns the round's part of the record, with
        one row per layer under `layers` (reference, threshold, units, masked, sparsity, capped)."""
        scores, alive = self.scores(module, stats, seed)
        weights = self.strategy.weights(module) if self.reference == "std" else None
        refs = references(scores, alive, self.reference, self.strategy.scope, weights)
        min_units = 1 if self.strategy.granularity == "structured" else 0  # a group keeps a channel: compact needs one
        keep, rows = threshold_keep(scores, alive, self.alpha, refs, self.max_sparsity, min_units)
        self.strategy.apply(module, keep)
        return {"target": None, "alpha": self.alpha, "reference": self.reference, "layers": rows}

    def report(self, module: nn.Module) -> list[dict[str, Any]]:
        """Per-layer table: weights and nonzero; channels kept for structured groups."""
        return self.strategy.report(module)

    def sparsity(self, module: nn.Module) -> float:
        """Achieved sparsity: fraction of pruned weights, or of removed channels when structured."""
        return self.strategy.sparsity(module)
