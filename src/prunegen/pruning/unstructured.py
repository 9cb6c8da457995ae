"""Per-weight masks from scores: per layer, or one global threshold with a per-layer floor."""

import math

import torch


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
