"""The foundation every floor stands on: what a generator offers (DCGAN, ResNet, conditional, a VAE's
decoder), and what is built from that alone: example inputs, checks, sampling, MAC counting and the spec
that rebuilds a generator at its current widths. Networks implement the protocol; nothing inherits from it.
Imports nothing of prunegen but `choices` (the foundation's one argument check).
"""

import importlib
from collections.abc import Callable
from typing import Any, Literal, Protocol, runtime_checkable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from prunegen.choices import check_choice


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
    check_choice("latents", latents, ("normal", "zeros"))
    check_choice("labels", labels, ("cycle", "zeros"))
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


class Sampling:
    """`latent_dim`, `num_classes` and `sample(n, labels, generator)` over `self.generator`: the surface the
    metrics, grids and export use. The model families mix it in (and override `_sampler` to sample an EMA);
    `GeneratorSampler` gives it to a bare generator."""

    generator: nn.Module

    @property
    def latent_dim(self) -> int:
        return self.generator.latent_dim

    @property
    def num_classes(self) -> int:
        return self.generator.num_classes

    def _sampler(self) -> nn.Module:
        return self.generator

    def sample(self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images in [-1, 1] in eval mode (the deployed behaviour); z ~ N(0, I) from `generator` on the CPU."""
        return sample_generator(self._sampler(), n, labels, generator)


class GeneratorSampler(Sampling):
    """The sampling surface over a bare generator (a distillation teacher, an exported compact generator)."""

    def __init__(self, generator: Generator) -> None:
        self.generator = generator


def is_iterative(generator: nn.Module) -> bool:
    """A generator that samples by repeating one step of its network (a diffusion UNet): it offers
    `step(*inputs)` and `step_inputs(n, rng)`, a fixed batch of that step's inputs (x_t, t)."""
    return hasattr(generator, "step_inputs")


@torch.no_grad()
def _count_macs(generator: nn.Module, run: Callable[[], Any]) -> int:
    was_training = generator.training
    generator.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            run()
    finally:
        generator.train(was_training)
    return counter.get_total_flops() // 2


def count_macs(generator: Generator) -> int:
    """MACs to generate one image, from PyTorch's FlopCounterMode (FLOPs / 2; Torch-Pruning's counter
    over-counts ConvTranspose2d ~4x). An iterative generator's image is all its sampler steps."""
    z, labels = example_inputs(generator, 1, latents="zeros", labels="zeros")
    return _count_macs(generator, lambda: generator(z, labels))


def count_step_macs(generator: Generator) -> int | None:
    """MACs of one step of an iterative generator's network (one denoising step); None for a one-pass one."""
    if not is_iterative(generator):
        return None
    inputs = generator.step_inputs(1)
    return _count_macs(generator, lambda: generator.step(*inputs))


@torch.no_grad()
def max_abs_diff(a: nn.Module, b: nn.Module, n: int = 64, seed: int = 0) -> float:
    """Largest output difference of two generators on the same fixed latents (eval mode); of one step of
    their network on the same fixed (x_t, t) when they sample iteratively."""
    rng = torch.Generator().manual_seed(seed)
    a.eval(), b.eval()
    if is_iterative(a):
        inputs = a.step_inputs(n, rng)
        return (a.step(*inputs) - b.step(*inputs)).abs().max().item()
    z, labels = example_inputs(a, n, rng=rng, device="cpu")
    return (a(z, labels) - b(z, labels)).abs().max().item()


def generator_spec(generator: Generator) -> dict[str, Any]:
    """Constructor arguments (current channel counts included) that rebuild this generator's architecture."""
    check_generator(generator)
    cls = type(generator)
    return {"_target_": f"{cls.__module__}.{cls.__qualname__}", **generator.spec()}


def build_from_spec(spec: dict[str, Any]) -> nn.Module:
    """The generator a `generator_spec` describes (fresh weights)."""
    module, _, name = spec["_target_"].rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    return cls(**{k: v for k, v in spec.items() if k != "_target_"})
