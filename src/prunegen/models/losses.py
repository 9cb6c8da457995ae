"""GAN losses as pure functions of discriminator logits (Goodfellow 2014, Mao 2017, Lim 2017, Gulrajani 2017),
and the registry `LOSSES` that `model.loss` names. A new loss is a `GANLoss` entry here: its D and G losses
and, optionally, a discriminator regulariser (weighted by `model.gp_weight`), e.g. R1 (Mescheder 2018).
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

Critic = Callable[[torch.Tensor], torch.Tensor]


def d_nonsat(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def g_nonsat(fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake).mean()


def d_lsgan(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake**2).mean()


def g_lsgan(fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((fake - 1) ** 2).mean()


def d_hinge(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def d_wgan(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return fake.mean() - real.mean()


def g_wgan(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP: E[(||grad critic(x_hat)|| - 1)^2] on random interpolates of real and fake."""
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def r1_penalty(critic: Critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """R1: 0.5 * E[||grad critic(x)||^2] on real images only (so `gp_weight` is the paper's gamma)."""
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(real).sum(), real, create_graph=True)
    return 0.5 * grad.flatten(1).pow(2).sum(dim=1).mean()


@dataclass(frozen=True)
class GANLoss:
    """D loss from (real logits, fake logits), G loss from fake logits, and an optional D regulariser
    `penalty(critic, real, fake)` added to the D loss times `model.gp_weight`."""

    d: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    g: Callable[[torch.Tensor], torch.Tensor]
    penalty: Callable[[Critic, torch.Tensor, torch.Tensor], torch.Tensor] | None = None


# per `model.loss` name; hinge GANs train G like WGAN.
LOSSES = {
    "nonsat": GANLoss(d_nonsat, g_nonsat),
    "nonsat_r1": GANLoss(d_nonsat, g_nonsat, r1_penalty),
    "lsgan": GANLoss(d_lsgan, g_lsgan),
    "hinge": GANLoss(d_hinge, g_wgan),
    "hinge_r1": GANLoss(d_hinge, g_wgan, r1_penalty),
    "wgan_gp": GANLoss(d_wgan, g_wgan, gradient_penalty),
}
