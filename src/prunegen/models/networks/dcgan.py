"""DCGAN generator and discriminator (Radford et al. 2016) for square images of 2^k pixels."""

import math

import torch
from torch import nn


def _num_upsamples(image_size: int) -> int:
    n = math.log2(image_size / 4)
    if image_size < 8 or n != int(n):
        raise ValueError(f"image_size must be 4 * 2^k with k >= 1 (8, 16, 32, 64, ...), got {image_size}")
    return int(n)


def generator_widths(ngf: int, image_size: int) -> list[int]:
    """Channel widths of the hidden feature maps, stem first: [..., 4*ngf, 2*ngf, ngf]."""
    n = _num_upsamples(image_size)
    return [ngf * 2 ** (n - 1 - i) for i in range(n)]


class DCGANGenerator(nn.Module):
    """z (B, latent_dim) -> image (B, channels, S, S) in [-1, 1].

    The stem is a ConvTranspose2d on a 1x1 latent (not Linear -> view), which Torch-Pruning traces.
    A conditional generator concatenates a learned class embedding to z.
    """

    def __init__(
        self,
        latent_dim: int = 64,
        ngf: int = 32,
        channels: int = 1,
        image_size: int = 32,
        num_classes: int = 0,
        widths: list[int] | None = None,
    ) -> None:
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        # `widths` overrides ngf: a compacted generator is rebuilt from its recorded widths.
        widths = list(widths) if widths is not None else generator_widths(ngf, image_size)
        if len(widths) != _num_upsamples(image_size):
            raise ValueError(f"{len(widths)} widths do not fit image_size {image_size}")
        self.embed = nn.Embedding(num_classes, latent_dim) if num_classes else None
        in_dim = latent_dim * (2 if num_classes else 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(in_dim, widths[0], 4, 1, 0, bias=False),  # (B, w0, 4, 4)
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(True),
        ]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Tanh()]  # (B, C, S, S)
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            if labels is None:
                raise ValueError("a conditional generator needs labels")
            z = torch.cat([z, self.embed(labels)], dim=1)
        return self.net(z[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    """image (B, channels, S, S) -> one logit per image (B,)."""

    def __init__(self, ndf: int = 32, channels: int = 1, image_size: int = 32) -> None:
        super().__init__()
        n = _num_upsamples(image_size)
        widths = [ndf * 2**i for i in range(n)]
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(widths[-1], 1, 4, 1, 0)]  # (B, 1, 1, 1)
        self.net = nn.Sequential(*layers)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()
