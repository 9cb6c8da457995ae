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
from prunegen.models.family import GenerativeFamily, should_log


class DDPM(GenerativeFamily, L.LightningModule):
    """Denoising diffusion: for images x_0, noise eps and t ~ U{0, T-1}, minimise ||eps - eps(x_t, t)||^2 with
    x_t from diffusers' DDPMScheduler.add_noise. Logs `train/loss`."""

    family = "diffusion"

    def __init__(self, generator: nn.Module, optimizer: Callable[..., torch.optim.Optimizer], name: str = "ddpm") -> None:
        super().__init__()
        self.generator, self.optimizer, self.name = generator, optimizer, name
        self.noise_scheduler = generator.scheduler("ddpm")

    def denoising_loss(self, images: torch.Tensor, timesteps: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """The DDPM loss of `images` at `timesteps` (B,), with `noise` (drawn when None)."""
        noise = torch.randn_like(images) if noise is None else noise
        x_t = self.noise_scheduler.add_noise(images, noise, timesteps)
        return F.mse_loss(self.generator.eps(x_t, timesteps), noise)

    def add_generator_loss(self, term: Any) -> None:
        raise NotImplementedError(
            "distillation for the diffusion family is not built yet (issue 19, item 5): use distill=none; "
            "Diff-Pruning's own recipe fine-tunes with the denoising loss alone")

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images = batch[0]
        t = torch.randint(0, self.generator.train_timesteps, (len(images),), device=images.device)
        loss = self.denoising_loss(images, t)
        if should_log(self):
            self.log("train/loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer(list(ordered_parameters(self)))

    @override
    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        restore_masks(self, checkpoint["state_dict"])  # a pruned checkpoint's masks, before its weights load
