"""The sampling protocol over a bare generator (a distillation teacher, an exported compact generator)."""

import torch
from torch import nn


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

    @torch.no_grad()
    def sample(self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        device = next(self.generator.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator).to(device)
        if self.num_classes and labels is None:
            labels = torch.arange(n) % self.num_classes
        was_training = self.generator.training
        self.generator.eval()
        try:
            return self.generator(z, labels.to(device) if labels is not None else None)
        finally:
            self.generator.train(was_training)
