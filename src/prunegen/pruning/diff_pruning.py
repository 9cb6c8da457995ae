"""Diff-Pruning's importance (Fang, Ma, Wang, "Structural Pruning for Diffusion Models", NeurIPS 2023): the
first-order Taylor score |w * dL/dw|, with the gradients of the denoising loss summed over the timesteps
t = 0, 1, 2, ... on one fixed batch of training images and noise, stopping at the first t whose loss falls
below `threshold` x the largest loss so far (their rule and default, 0.05): the late, noise-dominated steps
carry little of what the network knows about the images. Collected at the round, not over an epoch."""

from typing import Any

import torch
from torch import nn

from prunegen.pruning.stats import GradientStatistics


def training_batch(dataset: Any, size: int, seed: int) -> torch.Tensor:
    """`size` training images chosen by `seed` (not through the loader: its shuffling draws from the global RNG)."""
    g = torch.Generator().manual_seed(seed)
    index = torch.randperm(len(dataset), generator=g)[:size].tolist()
    return torch.stack([dataset[i][0] for i in index])


def collect(model: nn.Module, images: torch.Tensor, stats: GradientStatistics, layers: dict[str, nn.Module],
            threshold: float, seed: int = 0) -> dict[str, Any]:
    """Sum w * dL/dw into `stats` over t = 0, 1, ... until the loss of `images` (one fixed noise draw) falls below
    `threshold` x its running maximum; returns the part of the round's record (timesteps used, the losses)."""
    if not hasattr(model, "denoising_loss"):
        raise ValueError("pruning.criterion=diff_pruning scores a diffusion model's denoising loss over timesteps: "
                         "use it with model=ddpm (for GANs and VAEs: pruning.criterion=taylor)")
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(seed)).to(images)
    stats.install(layers)
    max_loss, used, loss, stopped = 0.0, 0, None, False
    try:
        with torch.enable_grad():
            for t in range(model.generator.train_timesteps):
                loss = model.denoising_loss(images, torch.full((len(images),), t, device=images.device), noise)
                max_loss = max(max_loss, loss.item())
                if loss.item() < threshold * max_loss:
                    stopped = True
                    break
                loss.backward()
                used += 1
    finally:
        stats.remove()
        model.zero_grad(set_to_none=True)
    return {"timesteps": used, "timestep_threshold": threshold, "stopped": stopped, "max_loss": max_loss,
            "stop_loss": loss.item() if loss is not None else None, "batch": len(images)}
