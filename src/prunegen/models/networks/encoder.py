"""Convolutional VAE encoder: image (and label) -> mean and log-variance of q(z | x, y)."""

import torch
from torch import nn

from prunegen.models.networks.conditional import ConditionalInput
from prunegen.models.networks.dcgan import stem_and_upsamples


class ConvEncoder(ConditionalInput, nn.Module):
    """(B, C, S, S) -> (mu, logvar), each (B, latent_dim); the DCGAN discriminator's body, then a linear head.

    A conditional encoder concatenates a class embedding to the flattened features.
    """

    def __init__(
        self,
        latent_dim: int = 32,
        nef: int = 32,
        channels: int = 1,
        image_size: int = 32,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        stem, n = stem_and_upsamples(image_size)
        widths = [nef * 2**i for i in range(n)]
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, True)]
        self.net = nn.Sequential(*layers, nn.Flatten())  # (B, w * stem * stem)
        self.latent_dim = latent_dim
        features = widths[-1] * stem * stem + self.init_embedding(num_classes, latent_dim)
        self.head = nn.Linear(features, 2 * latent_dim)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.concat_label(self.net(x), labels, role="encoder")
        mu, logvar = self.head(h).chunk(2, dim=1)
        return mu, logvar
