"""One LightningModule for the VAE family (Kingma & Welling 2014; beta-VAE, Higgins 2017; CVAE, Sohn 2015)."""

from collections.abc import Callable
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from typing_extensions import override

from prunegen.choices import check_choice
from prunegen.masks import ordered_parameters, restore_masks
from prunegen.models.family import GenerativeFamily, should_log
from prunegen.models.gan import check_labels_match
from prunegen.models.objective import GeneratorLR, GeneratorObjective

LIKELIHOODS = ("bernoulli", "gaussian")


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample, summed over latent dimensions: (B,)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=1)


def reconstruction_nll(x: torch.Tensor, logits: torch.Tensor, likelihood: str, sigma: float) -> torch.Tensor:
    """-log p(x | z) per sample, summed over pixels: (B,). `logits` is the decoder's pre-tanh output a.

    bernoulli: pixel intensities (x + 1) / 2 under Bernoulli(sigmoid(2a)), the mean image being tanh(a);
    gaussian: N(x; tanh(a), sigma^2), constants dropped.
    """
    if likelihood == "bernoulli":
        nll = F.binary_cross_entropy_with_logits(2 * logits, (x + 1) / 2, reduction="none")
    else:
        nll = 0.5 * ((x - torch.tanh(logits)) / sigma) ** 2
    return nll.flatten(1).sum(dim=1)


class VAE(GenerativeFamily, GeneratorObjective, L.LightningModule):
    """Encoder q(z | x, y), decoder p(x | z, y) (= `generator`), standard normal prior; loss recon + beta * KL.

    Logs `train/recon`, `train/kl` (per image, nats) and `train/elbo` = recon + beta * KL (the negative
    ELBO when beta = 1), the base loss. Terms added with `add_generator_loss` (`prunegen.models.objective`)
    are evaluated on the decoder's output for latents from the prior (those it is sampled with);
    `train/total` is all that is minimised, `base_loss_weight` * elbo plus the terms. With base weight 0
    the encoder gets no gradient and stays as it was.
    """

    family = "vae"

    def __init__(
        self,
        encoder: nn.Module,
        generator: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        beta: float = 1.0,
        likelihood: str = "bernoulli",
        sigma: float = 0.1,
        name: str = "vae",
    ) -> None:
        super().__init__()
        check_choice("model.likelihood", likelihood, LIKELIHOODS)
        if beta < 0 or sigma <= 0:
            raise ValueError(f"model.beta must be >= 0 and model.sigma > 0, got beta={beta}, sigma={sigma}")
        if encoder.latent_dim != generator.latent_dim or encoder.num_classes != generator.num_classes:
            raise ValueError(
                "model.encoder and model.generator must agree on latent_dim and num_classes, got "
                f"({encoder.latent_dim}, {encoder.num_classes}) and ({generator.latent_dim}, {generator.num_classes})"
            )
        self.save_hyperparameters(ignore=["encoder", "generator", "optimizer"])
        self.encoder, self.generator = encoder, generator
        self.optimizer = optimizer
        self.name = name
        self._init_objective()  # base loss = the negative ELBO; terms added e.g. by distillation

    @property
    def decoder(self) -> nn.Module:
        """The decoder is the generator (a property, so its weights appear once in the state dict)."""
        return self.generator

    def loss_terms(self, x: torch.Tensor, labels: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Batch means of recon, kl and elbo = recon + beta * kl, with one reparameterised z per image."""
        mu, logvar = self.encoder(x, labels)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        recon = reconstruction_nll(x, self.generator.logits(z, labels), self.hparams.likelihood, self.hparams.sigma)
        kl = kl_to_standard_normal(mu, logvar)
        return {"recon": recon.mean(), "kl": kl.mean(), "elbo": (recon + self.hparams.beta * kl).mean()}

    @override
    def setup(self, stage: str) -> None:
        if self.trainer is not None and self.trainer.datamodule is not None:
            check_labels_match(self, self.trainer.datamodule)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor | None:
        x, y = batch
        labels = y if self.num_classes else None
        total, logs, log = None, {}, should_log(self)  # self.log only where it is read (prunegen.models.family)
        if self.base_loss_weight:
            terms = self.loss_terms(x, labels)
            for key, value in terms.items() if log else ():
                self.log(f"train/{key}", value, prog_bar=key == "elbo")
            total = terms["elbo"] if self.base_loss_weight == 1 else self.base_loss_weight * terms["elbo"]
        if self.generator_losses:
            z = torch.randn(x.shape[0], self.latent_dim, device=self.device)  # the prior's latents
            total = self._add_terms(total, z, labels, self._generate(z, labels), logs)
        for key, value in logs.items() if log else ():
            self.log(key, value.detach())
        if total is not None and log:
            self.log("train/total", total.detach())
        return total

    def _generator_optimization(self) -> tuple[torch.optim.Optimizer, GeneratorLR]:
        return self.optimizers(use_pl_optimizer=False), self.lr_schedulers()

    def configure_optimizers(self) -> dict[str, Any]:
        """One optimizer (encoder and decoder) and its lr plan, stepped after every step (see `GeneratorLR`)."""
        optimizer = self.optimizer(list(ordered_parameters(self)))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": GeneratorLR(optimizer), "interval": "step"}}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Runs before the strict state-dict load: re-create the masks a pruned checkpoint holds.
        restore_masks(self, checkpoint["state_dict"])
