"""DiffAugment (Zhao et al. 2020): differentiable augmentations applied to every image D sees, real or fake."""

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from prunegen.choices import check_choice


def color(x: torch.Tensor) -> torch.Tensor:
    """Random brightness, saturation and contrast per image (x in [-1, 1])."""
    b = x.shape[0]
    x = x + (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to `ratio` of its size (whole pixels), zero padding."""
    b, _, h, w = x.shape
    max_shift = torch.tensor([int(w * ratio + 0.5), int(h * ratio + 0.5)], device=x.device)
    shift = (torch.rand(b, 2, device=x.device) * (2 * max_shift + 1)).floor() - max_shift  # (B, 2) in pixels
    theta = torch.zeros(b, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, 0, 2] = -2 * shift[:, 0] / w  # whole-pixel shifts keep bilinear sampling exact
    theta[:, 1, 2] = -2 * shift[:, 1] / h
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero one random square of `ratio` x the image size per image."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device)
    dy = torch.arange(h, device=x.device)[None, :, None] - (cy - ch // 2)  # (B, H, 1)
    dx = torch.arange(w, device=x.device)[None, None, :] - (cx - cw // 2)  # (B, 1, W)
    inside = (dy >= 0) & (dy < ch) & (dx >= 0) & (dx < cw)  # (B, H, W)
    return x * (~inside).unsqueeze(1).to(x.dtype)  # (B, 1, H, W) mask broadcast over channels


AUGMENTATIONS = {"color": color, "translation": translation, "cutout": cutout}


def parse_policy(policy: str | Sequence[str] | None) -> list[str]:
    """'color,translation' or ['color', 'translation'] -> ['color', 'translation']; '' or null -> []."""
    parts = (policy or "").split(",") if isinstance(policy, str) or policy is None else list(policy)
    names = [p.strip() for p in parts if p.strip()]
    for name in names:
        check_choice("model.diffaugment", name, AUGMENTATIONS)
    return names


def diff_augment(x: torch.Tensor, policy: list[str]) -> torch.Tensor:
    """Apply the augmentations in `policy` in order (fresh randomness per image and call)."""
    for name in policy:
        x = AUGMENTATIONS[name](x)
    return x
