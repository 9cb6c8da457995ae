"""Class-conditional input, one way for every network: `num_classes` 0 is unconditional.

Generators and the encoder concatenate a learned class embedding (`embed`) to their input; discriminators
add a projection term (`projection`) to their logit. The attribute names are state-dict keys of saved
checkpoints, and each network creates them where it always did, so seeded weights stay the same.
"""

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


class ConditionalInput:
    """Mixin for an `nn.Module` that may take class labels: sets `num_classes` and `embed` or `projection`."""

    num_classes: int
    embed: nn.Embedding | None
    projection: ProjectionHead | None

    def init_embedding(self, num_classes: int | None, dim: int) -> int:
        """Check `num_classes` and create `embed` (num_classes x dim) if conditional; return the added width."""
        self.num_classes = check_num_classes(num_classes)
        self.embed = nn.Embedding(self.num_classes, dim) if self.num_classes else None
        return dim if self.num_classes else 0

    def concat_label(self, h: torch.Tensor, labels: torch.Tensor | None, role: str = "generator") -> torch.Tensor:
        """(B, F) -> (B, F + dim): the labels' embedding appended to `h`; `h` itself when unconditional."""
        if self.embed is None:
            return h
        if labels is None:
            raise ValueError(f"a conditional {role} needs labels")
        return torch.cat([h, self.embed(labels)], dim=1)

    def init_projection(self, num_classes: int | None, features: int, use_sn: bool) -> None:
        """Check `num_classes` and create `projection` over `features` pooled features if conditional."""
        self.num_classes = check_num_classes(num_classes)
        self.projection = ProjectionHead(self.num_classes, features, use_sn) if self.num_classes else None

    def add_projection(self, logit: torch.Tensor, features: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """(B,) logit plus <embed(y), features> when conditional."""
        return logit if self.projection is None else logit + self.projection(features, labels)
