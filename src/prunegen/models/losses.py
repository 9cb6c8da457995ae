"""GAN losses as pure functions of discriminator logits (Goodfellow 2014, Mao 2017, Lim 2017, Gulrajani 2017)."""

import torch
import torch.nn.functional as F


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


# (discriminator loss, generator loss) per config name; hinge GANs train G like WGAN.
LOSSES = {
    "nonsat": (d_nonsat, g_nonsat),
    "lsgan": (d_lsgan, g_lsgan),
    "hinge": (d_hinge, g_wgan),
    "wgan_gp": (d_wgan, g_wgan),
}
