"""One LightningModule for the GAN family; manual optimization (D step, then G step)."""

from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import nn

from prunegen.models.losses import LOSSES, gradient_penalty
from prunegen.pruning.masks import ordered_parameters, restore_masks


class GAN(L.LightningModule):
    family = "gan"

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        optimizer_g: Callable[..., torch.optim.Optimizer],
        optimizer_d: Callable[..., torch.optim.Optimizer],
        loss: str = "nonsat",
        gp_weight: float = 10.0,
        n_critic: int = 1,
        name: str = "dcgan",
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"model.loss must be one of {tuple(LOSSES)}, got {loss!r}")
        if n_critic < 1:
            raise ValueError(f"model.n_critic must be >= 1, got {n_critic}")
        self.save_hyperparameters(ignore=["generator", "discriminator", "optimizer_g", "optimizer_d"])
        self.automatic_optimization = False
        self.generator, self.discriminator = generator, discriminator
        self.optimizer_g, self.optimizer_d = optimizer_g, optimizer_d
        self.d_loss_fn, self.g_loss_fn = LOSSES[loss]
        self.name = name

    @property
    def latent_dim(self) -> int:
        return self.generator.latent_dim

    @property
    def num_classes(self) -> int:
        return self.generator.num_classes

    @torch.no_grad()
    def sample(self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images in [-1, 1] from the generator in eval mode (the deployed behaviour)."""
        z = torch.randn(n, self.latent_dim, generator=generator).to(self.device)
        if self.num_classes and labels is None:
            labels = torch.arange(n) % self.num_classes
        labels = labels.to(self.device) if labels is not None else None
        was_training = self.generator.training
        self.generator.eval()
        try:
            return self.generator(z, labels)
        finally:
            self.generator.train(was_training)

    def _labels(self, y: torch.Tensor) -> torch.Tensor | None:
        return y if self.num_classes else None

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        opt_g, opt_d = self.optimizers()
        labels = self._labels(y)
        z = torch.randn(x.shape[0], self.latent_dim, device=self.device)

        fake = self.generator(z, labels).detach()
        d_loss = self.d_loss_fn(self.discriminator(x), self.discriminator(fake))
        if self.hparams.loss == "wgan_gp":
            d_loss = d_loss + self.hparams.gp_weight * gradient_penalty(self.discriminator, x, fake)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        opt_d.step()
        self.log("train/d_loss", d_loss, prog_bar=True)

        if batch_idx % self.hparams.n_critic == 0:
            g_loss = self.g_loss_fn(self.discriminator(self.generator(z, labels)))
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_loss)
            opt_g.step()
            self.log("train/g_loss", g_loss, prog_bar=True)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return [
            self.optimizer_g(list(ordered_parameters(self.generator))),
            self.optimizer_d(list(ordered_parameters(self.discriminator))),
        ]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Runs before the strict state-dict load: re-create the masks a pruned checkpoint holds.
        restore_masks(self, checkpoint["state_dict"])
