"""Small ResNet generator / discriminator in the style of SNGAN's CIFAR models (Miyato et al. 2018)."""

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from prunegen.models.networks.conditional import ConditionalInput
from prunegen.models.networks.layers import maybe_sn


def _num_blocks(image_size: int) -> int:
    n = math.log2(image_size / 4)
    if image_size < 8 or n != int(n):
        raise ValueError(f"image_size must be 4 * 2^k with k >= 1 (8, 16, 32, 64) for the ResNet, got {image_size}")
    return int(n)


class GBlock(nn.Module):
    """BN-ReLU-up-conv3-BN-ReLU-conv3 plus an upsampled 1x1 shortcut: (B, C, H, W) -> (B, C', 2H, 2W).

    `c_mid` (the inner width, default C') differs from C' once structured pruning removed channels.
    """

    def __init__(self, c_in: int, c_out: int, c_mid: int | None = None) -> None:
        super().__init__()
        c_mid = c_out if c_mid is None else c_mid
        self.bn1, self.conv1 = nn.BatchNorm2d(c_in), nn.Conv2d(c_in, c_mid, 3, 1, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(c_mid), nn.Conv2d(c_mid, c_out, 3, 1, 1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2.0, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))
        return h + self.shortcut(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class ResNetGenerator(ConditionalInput, nn.Module):
    """z (B, latent_dim) -> image (B, channels, S, S) in [-1, 1]; a ConvTranspose2d stem on a 1x1 latent.

    Widths: the stem's output, then (inner, output) per up-block; all `ngf` unless `widths` (a
    compacted generator's recorded channel counts, see `spec`) says otherwise.
    """

    def __init__(
        self,
        latent_dim: int = 64,
        ngf: int = 64,
        channels: int = 1,
        image_size: int = 32,
        num_classes: int = 0,
        widths: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.latent_dim, self.channels, self.image_size = latent_dim, channels, image_size
        in_dim = latent_dim + self.init_embedding(num_classes, latent_dim)  # before the stem: seeded init
        n = _num_blocks(image_size)
        stem, blocks = (ngf, [[ngf, ngf]] * n) if widths is None else (widths["stem"], widths["blocks"])
        if len(blocks) != n:
            raise ValueError(f"{len(blocks)} block widths do not fit image_size {image_size} ({n} blocks)")
        self.stem = nn.ConvTranspose2d(in_dim, stem, 4, 1, 0)  # (B, stem, 4, 4)
        c_in, layers = stem, []
        for c_mid, c_out in blocks:
            layers.append(GBlock(c_in, c_out, c_mid))
            c_in = c_out
        self.blocks = nn.Sequential(*layers)
        self.out = nn.Sequential(nn.BatchNorm2d(c_in), nn.ReLU(), nn.Conv2d(c_in, channels, 3, 1, 1), nn.Tanh())

    def spec(self) -> dict[str, Any]:
        """Constructor arguments with the current widths (export rebuilds a compacted generator from them)."""
        blocks = [[b.conv1.out_channels, b.conv2.out_channels] for b in self.blocks]
        return dict(latent_dim=self.latent_dim, channels=self.channels, image_size=self.image_size,
                    num_classes=self.num_classes, widths={"stem": self.stem.out_channels, "blocks": blocks})

    def _input(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.concat_label(z, labels)[:, :, None, None]  # (B, Z, 1, 1)

    def logits(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The pre-tanh output a (forward is tanh(a)); a VAE's Bernoulli likelihood uses 2a as logits."""
        return self.out[:-1](self.blocks(self.stem(self._input(z, labels))))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.out(self.blocks(self.stem(self._input(z, labels))))


class DBlock(nn.Module):
    """(ReLU)-conv3-ReLU-conv3-(avgpool) plus a 1x1 shortcut; `first` is SNGAN's optimized first block."""

    def __init__(self, c_in: int, c_out: int, down: bool, first: bool = False, use_sn: bool = True) -> None:
        super().__init__()
        sn = maybe_sn(use_sn)
        self.conv1, self.conv2 = sn(nn.Conv2d(c_in, c_out, 3, 1, 1)), sn(nn.Conv2d(c_out, c_out, 3, 1, 1))
        self.shortcut = sn(nn.Conv2d(c_in, c_out, 1)) if (c_in != c_out or down) else None
        self.down, self.first = down, first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(x if self.first else F.relu(x))))
        s = x
        if self.first:  # pool before the shortcut conv: the input has few channels
            h, s = F.avg_pool2d(h, 2), F.avg_pool2d(s, 2)
            return h + self.shortcut(s)
        if self.shortcut is not None:
            s = self.shortcut(s)
        if self.down:
            h, s = F.avg_pool2d(h, 2), F.avg_pool2d(s, 2)
        return h + s


class ResNetDiscriminator(ConditionalInput, nn.Module):
    """image (B, channels, S, S) -> logit (B,): down-blocks to 8x8, two more blocks, ReLU, sum-pool, linear."""

    def __init__(
        self,
        ndf: int = 64,
        channels: int = 1,
        image_size: int = 32,
        num_classes: int = 0,
        spectral_norm: bool = True,
    ) -> None:
        super().__init__()
        n_down = _num_blocks(image_size) - 1  # down to 8x8 (4x4 for 8 px)
        blocks = [DBlock(channels, ndf, down=True, first=True, use_sn=spectral_norm)]
        blocks += [DBlock(ndf, ndf, down=True, use_sn=spectral_norm) for _ in range(max(n_down - 1, 0))]
        blocks += [DBlock(ndf, ndf, down=False, use_sn=spectral_norm) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)
        self.linear = maybe_sn(spectral_norm)(nn.Linear(ndf, 1))
        self.channels = channels
        self.init_projection(num_classes, ndf, spectral_norm)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))  # (B, ndf)
        return self.add_projection(self.linear(h).flatten(), h, labels)
