"""The sampling protocol over a bare generator (a distillation teacher, an exported compact generator)."""

import torch
from torch import nn


@torch.no_grad()
def sample_generator(
    net: nn.Module, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """n images in [-1, 1] from `net(z, labels)` in eval mode (the deployed behaviour); z ~ N(0, I)
    drawn on the CPU from `generator` (so samples do not depend on the device); labels cycle over the
    classes of a conditional net when not given."""
    device = next(net.parameters()).device
    z = torch.randn(n, net.latent_dim, generator=generator).to(device)
    num_classes = getattr(net, "num_classes", 0)
    if num_classes and labels is None:
        labels = torch.arange(n) % num_classes
    was_training = net.training
    net.eval()
    try:
        return net(z, labels.to(device) if labels is not None else None)
    finally:
        net.train(was_training)


class GeneratorSampler:
    """`generator`, `latent_dim`, `num_classes` and `sample(n, labels, generator)`, as the LightningModules expose."""

    def __init__(self, generator: nn.Module) -> None:
        self.generator = generator

    @property
    def latent_dim(self) -> int:
        return self.generator.latent_dim

    @property
    def num_classes(self) -> int:
        return getattr(self.generator, "num_classes", 0)

    def sample(self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        return sample_generator(self.generator, n, labels, generator)
