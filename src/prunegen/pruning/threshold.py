"""Threshold pruning: mask every unit whose score is below alpha x a reference; the sparsity is the outcome.

`reference=mean` is the seed document's rule: T = alpha * C_mean, with C the unit's score (for the
`gradient` criterion C = sum over the epoch of (dL/dw)^2), the mean taken over the surviving units of
each layer (`scope=layer`) or of all target layers together (`scope=global`).
`reference=std` is Han et al. 2015: T = alpha * std(W) of each layer's surviving weights, compared with |w|.

Units are weights (unstructured) or channel groups (structured). Already-masked units stay masked and
are left out of the reference: their score says nothing about the layer any more (a pruned weight's
magnitude is 0), and counting them would pull the reference down with every round.
"""

import math
from typing import Any

import torch

REFERENCES = ("mean", "std")


def references(
    scores: dict[str, torch.Tensor],
    alive: dict[str, torch.Tensor],
    reference: str,
    scope: str,
    weights: dict[str, torch.Tensor] | None = None,
) -> dict[str, float]:
    """The reference value of every layer, over its surviving units only."""
    if reference == "std":  # Han: per layer, the population std of the surviving weights
        return {k: float(weights[k][alive[k]].double().std(correction=0)) if alive[k].any() else 0.0 for k in scores}
    if scope == "global":
        live = torch.cat([scores[k][alive[k]].double().flatten() for k in scores])
        mean = float(live.mean()) if live.numel() else 0.0
        return dict.fromkeys(scores, mean)
    return {k: float(scores[k][alive[k]].double().mean()) if alive[k].any() else 0.0 for k in scores}


def threshold_keep(
    scores: dict[str, torch.Tensor],
    alive: dict[str, torch.Tensor],
    alpha: float,
    refs: dict[str, float],
    max_sparsity: float | None = None,
    min_units: int = 0,
) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """Keep (bool, shaped like the scores) the alive units with score >= alpha * reference.

    `max_sparsity` caps the masked fraction of a layer (the best-scoring alive units are kept back);
    `min_units` units are always kept. Returns the decisions and one report row per layer.
    """
    keep, rows = {}, []
    for key, s in scores.items():
        threshold = alpha * refs[key]
        k = alive[key] & (s >= threshold)
        n = s.numel()
        floor = max(min_units, n - math.floor(max_sparsity * n) if max_sparsity is not None else 0)
        capped = int(k.sum()) < floor and int(alive[key].sum()) > int(k.sum())
        if capped:  # the cap binds: keep back the best alive units up to the floor
            ranked = s.flatten().double().masked_fill(~alive[key].flatten(), -math.inf)
            k = torch.zeros(n, dtype=torch.bool, device=s.device)
            k[torch.topk(ranked, min(floor, int(alive[key].sum()))).indices] = True
            k = k.view_as(s)
        keep[key] = k
        masked = n - int(k.sum())
        rows.append({"layer": key, "reference": refs[key], "threshold": threshold, "units": n,
                     "masked": masked, "sparsity": masked / n, "capped": capped})
    return keep, rows
