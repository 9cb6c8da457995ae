"""Seeded blocks that leave the caller's random streams untouched."""

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def isolated_rng(seed: int, device: torch.device | str = "cpu") -> Iterator[None]:
    """Run the block with a fixed seed and restore the global CPU (and `device`) RNG state after."""
    device = torch.device(device)
    # fork_rng restores only the devices it is told about; the CPU state is always restored.
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        # torch.manual_seed would also reseed every other GPU, which fork_rng does not restore.
        torch.default_generator.manual_seed(seed)
        if cuda:
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        yield
