"""Unstructured pruning: per-weight masks from scores, per layer or with one global threshold (and a
per-layer floor), and the strategy object the callback drives."""

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from prunegen.masks import effective_weight, get_mask, prunable_layers, set_mask

Units = dict[str, torch.Tensor]  # layer (or channel group) -> one entry per unit


def _bottom_k_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Mask (1 = keep) that drops the k lowest scores."""
    mask = torch.ones(scores.numel(), device=scores.device)
    if k > 0:
        mask[torch.topk(scores.flatten(), k, largest=False).indices] = 0
    return mask.view_as(scores)


def layer_masks(scores: dict[str, torch.Tensor], masks: dict[str, torch.Tensor], sparsity: float) -> dict[str, torch.Tensor]:
    """Every layer to `sparsity` (rounded to one weight); already pruned weights stay pruned."""
    out = {}
    for path, s in scores.items():
        s = s.masked_fill(masks[path] == 0, -math.inf)
        out[path] = _bottom_k_mask(s, round(sparsity * s.numel()))
    return out


def global_masks(
    scores: dict[str, torch.Tensor], masks: dict[str, torch.Tensor], sparsity: float, min_keep: float = 0.0
) -> dict[str, torch.Tensor]:
    """One threshold across layers; each layer keeps at least ceil(min_keep * size) of its best weights."""
    flat = []
    for path, s in scores.items():
        s = s.flatten().float().masked_fill(masks[path].flatten() == 0, -math.inf)
        keep = math.ceil(min_keep * s.numel())
        if keep:
            s = s.clone()
            s[torch.topk(s, keep).indices] = math.inf
        flat.append(s)
    total = sum(s.numel() for s in flat)
    mask = _bottom_k_mask(torch.cat(flat), round(sparsity * total))
    return dict(zip(scores, (m.view_as(scores[p]) for p, m in zip(scores, mask.split([s.numel() for s in flat])))))


class WeightMasks:
    """Unstructured strategy: every weight of the targets' conv/linear layers is a unit (biases, BatchNorm
    never); a layer's units are keyed by its path. Sparsity counts weights."""

    granularity = "unstructured"

    def __init__(self, targets: list[str], ignore: list[str], scope: str, min_keep: float = 0.0) -> None:
        self.targets, self.ignore, self.scope, self.min_keep = targets, ignore, scope, min_keep

    def setup(self, pl_module: nn.Module) -> None:
        pass

    def layers(self, pl_module: nn.Module) -> dict[str, nn.Module]:
        return prunable_layers(pl_module, self.targets, self.ignore)

    def scores(self, pl_module: nn.Module, score: Callable[[nn.Module, str, str], torch.Tensor]) -> tuple[Units, Units]:
        """(scores, alive) per layer; `score(module, path, param_name)` is the criterion with its stats."""
        layers = self.layers(pl_module)
        return ({p: score(m, p, "weight") for p, m in layers.items()},
                {p: get_mask(m).bool() for p, m in layers.items()})

    def weights(self, pl_module: nn.Module) -> Units:
        """The weights each unit is (Han's std reference)."""
        return {p: effective_weight(m).detach() for p, m in self.layers(pl_module).items()}

    def select(self, scores: Units, alive: Units, sparsity: float) -> Units:
        masks = {p: a.float() for p, a in alive.items()}
        if self.scope == "layer":
            new = layer_masks(scores, masks, sparsity)
        else:
            new = global_masks(scores, masks, sparsity, self.min_keep)
        return {p: m.bool() for p, m in new.items()}

    def apply(self, pl_module: nn.Module, keep: Units) -> None:
        layers = self.layers(pl_module)
        with torch.no_grad():
            for path, k in keep.items():
                set_mask(layers[path], "weight", k.float())

    def report(self, pl_module: nn.Module) -> list[dict[str, Any]]:
        return weight_report(self.layers(pl_module))

    def sparsity(self, pl_module: nn.Module) -> float:
        rows = self.report(pl_module)
        return 1 - sum(r["nonzero"] for r in rows) / sum(r["weights"] for r in rows)


def weight_report(layers: dict[str, nn.Module]) -> list[dict[str, Any]]:
    """Per layer: weights, unmasked weights and the masked fraction."""
    rows = []
    for path, layer in layers.items():
        mask = get_mask(layer)
        n, nz = mask.numel(), int(mask.sum())
        rows.append({"layer": path, "weights": n, "nonzero": nz, "sparsity": 1 - nz / n})
    return rows
