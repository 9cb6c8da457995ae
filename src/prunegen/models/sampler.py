"""The sampling protocol over a bare generator (a distillation teacher, an exported compact generator)."""

import torch

from prunegen.models.networks.protocol import Generator, example_inputs


@torch.no_grad()
def sample_generator(
    net: Generator, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """n images in [-1, 1] from `net(z, labels)` in eval mode (the deployed behaviour); z ~ N(0, I)
    drawn on the CPU from `generator` (so samples do not depend on the device); labels cycle over the
    classes of a conditional net when not given."""
    device = next(net.parameters()).device
    z, cycled = example_inputs(net, n, rng=generator, device="cpu")
    labels = cycled if labels is None else labels
    was_training = net.training
    net.eval()
    try:
        return net(z.to(device), labels.to(device) if labels is not None else None)
    finally:
        net.train(was_training)


class GeneratorSampler:
    """`generator`, `latent_dim`, `num_classes` and `sample(n, labels, generator)`, as the LightningModules expose."""

    def __init__(self, generator: Generator) -> None:
        self.generator = generator

    @property
    def latent_dim(self) -> int:
        return self.generator.latent_dim

    @property
    def num_classes(self) -> int:
        return self.generator.num_classes

    def sample(self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        return sample_generator(self.generator, n, labels, generator)
