"""Small pieces shared by the networks: spectral norm switch, projection head, argument checks."""

from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def check_num_classes(num_classes: int | None) -> int:
    """0 (unconditional) or the number of classes; null is a config mistake, not 'unconditional'."""
    if num_classes is None or num_classes < 0:
        raise ValueError(
            f"num_classes must be >= 0 (0: unconditional), got {num_classes!r}; "
            "conditional models on data=image_folder need data.num_classes (the number of label sub-folders)"
        )
    return int(num_classes)


def maybe_sn(enabled: bool) -> Callable[[nn.Module], nn.Module]:
    """`spectral_norm` (parametrization API) when enabled, else the identity."""
    return spectral_norm if enabled else (lambda m: m)


class ProjectionHead(nn.Module):
    """The class term of a projection discriminator: <embed(y), phi(x)> per sample."""

    def __init__(self, num_classes: int, features: int, use_sn: bool = False) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_classes, features)
        nn.init.normal_(self.embed.weight, std=0.02)
        if use_sn:
            self.embed = spectral_norm(self.embed)

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if labels is None:
            raise ValueError("a conditional discriminator needs labels")
        return (self.embed(labels) * features).sum(dim=1)  # (B,)
