"""DCGAN generator and discriminator (Radford et al. 2016) for square images of 4·2^k or 7·2^k pixels."""

import math
from typing import Any

import torch
from torch import nn

from prunegen.models.networks.conditional import ConditionalInput
from prunegen.models.networks.layers import maybe_sn


def stem_and_upsamples(image_size: int) -> tuple[int, int]:
    """(stem size, number of 2x upsamplings): 32 -> (4, 3), 64 -> (4, 4), 28 -> (7, 2)."""
    for stem in (4, 7):
        n = math.log2(image_size / stem)
        if n >= 1 and n == int(n):
            return stem, int(n)
    raise ValueError(
        f"image_size must be 4 * 2^k or 7 * 2^k with k >= 1 (8, 14, 16, 28, 32, 64, ...), got {image_size}"
    )


def generator_widths(ngf: int, image_size: int) -> list[int]:
    """Channel widths of the hidden feature maps, stem first: [..., 4*ngf, 2*ngf, ngf]."""
    n = stem_and_upsamples(image_size)[1]
    return [ngf * 2 ** (n - 1 - i) for i in range(n)]


class DCGANGenerator(ConditionalInput, nn.Module):
    """z (B, latent_dim) -> image (B, channels, S, S) in [-1, 1].

    The stem is a ConvTranspose2d on a 1x1 latent (not Linear -> view), which Torch-Pruning traces:
    kernel 4 for 2^k sizes, kernel 7 for 28 px (7 -> 14 -> 28).
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
        self.latent_dim, self.channels, self.image_size = latent_dim, channels, image_size
        in_dim = latent_dim + self.init_embedding(num_classes, latent_dim)  # before the stem: seeded init
        stem, n = stem_and_upsamples(image_size)
        # `widths` overrides ngf: a compacted generator is rebuilt from its recorded widths.
        widths = list(widths) if widths is not None else generator_widths(ngf, image_size)
        if len(widths) != n:
            raise ValueError(f"{len(widths)} widths do not fit image_size {image_size}")
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(in_dim, widths[0], stem, 1, 0, bias=False),  # (B, w0, stem, stem)
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(True),
        ]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Tanh()]  # (B, C, S, S)
        self.net = nn.Sequential(*layers)

    def spec(self) -> dict[str, Any]:
        """Constructor arguments with the current widths (export rebuilds a compacted generator from them)."""
        widths = [m.out_channels for m in self.net if isinstance(m, nn.ConvTranspose2d)][:-1]
        return dict(latent_dim=self.latent_dim, channels=self.channels, image_size=self.image_size,
                    num_classes=self.num_classes, widths=widths)

    def _input(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.concat_label(z, labels)[:, :, None, None]  # (B, Z, 1, 1)

    def logits(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The pre-tanh output a (forward is tanh(a)); a VAE's Bernoulli likelihood uses 2a as logits."""
        return self.net[:-1](self._input(z, labels))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(self._input(z, labels))


class DCGANDiscriminator(ConditionalInput, nn.Module):
    """image (B, channels, S, S) -> one logit per image (B,).

    `spectral_norm` wraps every conv (SNGAN); `batch_norm=False` drops BatchNorm (usual with SN or
    WGAN-GP, whose penalty is per sample). With `num_classes` the logit gets a projection term
    <embed(y), sum-pooled features> (Miyato & Koyama 2018).
    """

    def __init__(
        self,
        ndf: int = 32,
        channels: int = 1,
        image_size: int = 32,
        num_classes: int = 0,
        spectral_norm: bool = False,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        stem, n = stem_and_upsamples(image_size)
        widths = [ndf * 2**i for i in range(n)]
        sn = maybe_sn(spectral_norm)
        layers: list[nn.Module] = [sn(nn.Conv2d(channels, widths[0], 4, 2, 1)), nn.LeakyReLU(0.2, True)]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers.append(sn(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not batch_norm)))
            layers += [nn.BatchNorm2d(c_out)] if batch_norm else []
            layers.append(nn.LeakyReLU(0.2, True))
        layers += [sn(nn.Conv2d(widths[-1], 1, stem, 1, 0))]  # (B, 1, 1, 1)
        self.net = nn.Sequential(*layers)
        self.channels = channels
        self.init_projection(num_classes, widths[-1], spectral_norm)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.net[:-1](x)  # (B, C, stem, stem)
        return self.add_projection(self.net[-1](h).flatten(), h.sum(dim=(2, 3)), labels)
