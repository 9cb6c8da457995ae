"""Cost of one generated image: MACs from PyTorch's FlopCounterMode (FLOPs / 2)."""

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@torch.no_grad()
def count_macs(generator: nn.Module, latent_dim: int, num_classes: int = 0) -> int:
    """MACs to generate one image (Torch-Pruning's counter over-counts ConvTranspose2d ~4x)."""
    device = next(generator.parameters()).device
    z = torch.zeros(1, latent_dim, device=device)
    labels = torch.zeros(1, dtype=torch.long, device=device) if num_classes else None
    was_training = generator.training
    generator.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            generator(z, labels)
    finally:
        generator.train(was_training)
    return counter.get_total_flops() // 2
