"""What every generator offers (DCGAN, ResNet, conditional, a VAE's decoder): the only surface that
sampling, compaction, export and MAC counting use. Networks implement it; nothing inherits from it.
"""

from typing import Any, Literal, Protocol, runtime_checkable

import torch


@runtime_checkable
class Generator(Protocol):
    """z (B, latent_dim) [and labels (B,) when num_classes > 0] -> images (B, C, S, S) in [-1, 1]."""

    latent_dim: int
    num_classes: int  # 0: unconditional

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor: ...

    def spec(self) -> dict[str, Any]:
        """Constructor arguments (builtins only) that rebuild this network at its current channel widths,
        so a compacted generator (channels physically removed) can be re-created and loaded."""
        ...


@runtime_checkable
class Decoder(Generator, Protocol):
    """A generator whose output is tanh(a): a VAE's Bernoulli likelihood reads the pre-tanh a."""

    def logits(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor: ...


def check_generator(net: object, key: str = "model.generator") -> None:
    """A clear error when a network does not implement the generator protocol."""
    missing = [a for a in ("latent_dim", "num_classes", "forward", "spec") if not hasattr(net, a)]
    if missing:
        raise TypeError(f"{key} ({type(net).__name__}) does not implement the generator protocol: missing {missing}")


def example_inputs(
    net: Generator,
    n: int = 2,
    *,
    rng: torch.Generator | None = None,
    device: torch.device | str | None = None,
    latents: Literal["normal", "zeros"] = "normal",
    labels: Literal["cycle", "zeros"] = "cycle",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(z (n, latent_dim), labels (n,) or None when unconditional) for `net(z, labels)`.

    z ~ N(0, I) from `rng` (a CPU generator; the global RNG when None), drawn on `device` (default:
    the net's); `latents="zeros"` for a draw-free input. Labels cycle over the classes (0, 1, ..., 0, 1)
    or are all 0.
    """
    if latents not in ("normal", "zeros") or labels not in ("cycle", "zeros"):
        raise ValueError(f"latents must be 'normal' or 'zeros' and labels 'cycle' or 'zeros', got {latents!r}, {labels!r}")
    if device is None:
        param = next(net.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    if latents == "zeros":
        z = torch.zeros(n, net.latent_dim, device=device)
    else:
        z = torch.randn(n, net.latent_dim, generator=rng, device=device)
    if not net.num_classes:
        return z, None
    if labels == "zeros":
        return z, torch.zeros(n, dtype=torch.long, device=device)
    return z, torch.arange(n, device=device) % net.num_classes
