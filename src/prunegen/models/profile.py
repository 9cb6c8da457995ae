"""Cost of one generated image: MACs from PyTorch's FlopCounterMode (FLOPs / 2)."""

import torch
from torch.utils.flop_counter import FlopCounterMode

from prunegen.models.networks.protocol import Generator, example_inputs


@torch.no_grad()
def count_macs(generator: Generator) -> int:
    """MACs to generate one image (Torch-Pruning's counter over-counts ConvTranspose2d ~4x)."""
    z, labels = example_inputs(generator, 1, latents="zeros", labels="zeros")
    was_training = generator.training
    generator.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            generator(z, labels)
    finally:
        generator.train(was_training)
    return counter.get_total_flops() // 2
