"""The diffusion family: DDPM training (Ho et al. 2020: epsilon prediction, the simple MSE loss) of a
diffusers UNet (`models/networks/unet.py`), sampled with DDIM. The UNet is the `generator` the pruning,
scoring and export stages see, behind the same generator protocol as the GANs' and VAEs'."""

from collections.abc import Callable
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from typing_extensions import override

from prunegen.masks import ordered_parameters, restore_masks
from prunegen.models.ema import apply_masks, load_ema_into, make_ema, update_ema
from prunegen.models.family import GenerativeFamily, should_log
from prunegen.models.objective import GeneratorLR, GeneratorObjective


class DDPM(GenerativeFamily, GeneratorObjective, L.LightningModule):
    """Denoising diffusion: for images x_0, noise eps and t ~ U{0, T-1}, minimise ||eps - eps(x_t, t)||^2 with
    x_t from diffusers' DDPMScheduler.add_noise (`noise_scheduler`). Logs `train/loss` (the denoising loss).

    Terms added with `add_generator_loss` (`prunegen.models.objective`) are called with (x_t, t, eps_pred):
    the noisy images, their timesteps and the student's predicted noise (with grad), so a distillation term
    compares it with a teacher's prediction on the same (x_t, t, noise). `train/total` is what is minimised,
    `base_loss_weight` * the denoising loss plus the terms. With `ema_decay` > 0 samples come from an EMA of
    the UNet (masked like it, see `models/ema.py`).
    """

    family = "diffusion"

    def __init__(self, generator: nn.Module, optimizer: Callable[..., torch.optim.Optimizer], ema_decay: float = 0.0,
                 name: str = "ddpm") -> None:
        super().__init__()
        if not 0 <= ema_decay < 1:
            raise ValueError(f"model.ema_decay must be in [0, 1) (0: no EMA), got {ema_decay}")
        self.save_hyperparameters(ignore=["generator", "optimizer"])
        self.generator, self.optimizer, self.name = generator, optimizer, name
        self.noise_scheduler = generator.scheduler("ddpm")
        if ema_decay > 0:  # a top-level module beside `generator`, so pruning targets never see it
            self.ema = make_ema(generator)
        self._init_objective()  # base loss = the denoising loss; terms added e.g. by distillation

    def noisy(self, images: torch.Tensor, timesteps: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t of `images` at `timesteps` (B,) with `noise`."""
        return self.noise_scheduler.add_noise(images, noise, timesteps)

    def denoising_loss(self, images: torch.Tensor, timesteps: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """The DDPM loss of `images` at `timesteps` (B,), with `noise` (drawn when None)."""
        noise = torch.randn_like(images) if noise is None else noise
        return F.mse_loss(self.generator.eps(self.noisy(images, timesteps, noise), timesteps), noise)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images = batch[0]
        t = torch.randint(0, self.generator.train_timesteps, (len(images),), device=images.device)
        noise = torch.randn_like(images)
        x_t = self.noisy(images, t, noise)
        eps = self._generate(x_t, t, self.generator.eps)
        logs: dict[str, torch.Tensor] = {"train/loss": F.mse_loss(eps, noise)}
        total = None
        if self.base_loss_weight:
            total = logs["train/loss"] if self.base_loss_weight == 1 else self.base_loss_weight * logs["train/loss"]
        total = self._add_terms(total, x_t, t, eps, logs)
        if total is None:
            raise RuntimeError("the UNet has nothing to minimise: base loss weight 0 and no added loss term")
        logs["train/total"] = total
        if should_log(self):  # Lightning's self.log costs ~1.7 ms a call (prunegen.models.family)
            for key, value in logs.items():
                self.log(key, value.detach(), prog_bar=key == "train/loss")
        return total

    @override
    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.hparams.ema_decay > 0:  # after the optimizer step; warm-up: the early average follows the UNet
            step = self.global_step
            update_ema(self.ema, self.generator, min(self.hparams.ema_decay, (1 + step) / (10 + step)))

    @override
    def _sampler(self) -> nn.Module:
        if self.hparams.ema_decay > 0:
            apply_masks(self.ema, self.generator)  # masks may have changed since the last update
            return self.ema
        return self.generator

    @override
    def use_ema_weights(self) -> None:
        """Copy the EMA weights into `generator` (before distillation's snapshot and export); masks are kept."""
        if self.hparams.ema_decay > 0:
            load_ema_into(self.generator, self.ema)

    @override
    def reset_ema(self) -> None:
        if self.hparams.ema_decay > 0:
            update_ema(self.ema, self.generator, decay=0.0)

    def _generator_optimization(self) -> tuple[torch.optim.Optimizer, GeneratorLR]:
        return self.optimizers(use_pl_optimizer=False), self.lr_schedulers()

    def configure_optimizers(self) -> dict[str, Any]:
        """The UNet's optimizer and its lr plan, stepped after every step (see `GeneratorLR`)."""
        optimizer = self.optimizer(list(ordered_parameters(self.generator)))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": GeneratorLR(optimizer), "interval": "step"}}

    @override
    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        restore_masks(self, checkpoint["state_dict"])  # a pruned checkpoint's masks, before its weights load
