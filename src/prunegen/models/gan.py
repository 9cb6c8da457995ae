"""One LightningModule for the GAN family; manual optimization (D step, then G step).

Losses (`loss`), spectral norm and projection (in the discriminator's config), conditional
generation (`num_classes` of the networks), DiffAugment (`diffaugment`) and an EMA of the
generator (`ema_decay`) are all chosen in `configs/model/*.yaml`.

What G is trained with can change during a run through public methods (`prunegen.models.objective`):
`add_generator_loss` (a distillation term, say), `set_base_loss_weight` (the adversarial term's weight),
`set_discriminator_policy` (train | freeze | none), `reset_generator_optimizer` (fresh Adam moments, a new
lr, constant or cosine) and `reset_discriminator_optimizer`. Logged: `train/d_loss`, `train/g_loss` (the
adversarial G loss, when it is used) and `train/g_total` (all that G minimises: the weighted adversarial
loss plus the added terms; equal to `train/g_loss` in plain GAN training).
"""

from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import nn
from typing_extensions import override

from prunegen.choices import check_choice
from prunegen.masks import ordered_parameters, restore_masks
from prunegen.models.augment import diff_augment, parse_policy
from prunegen.models.ema import apply_masks, load_ema_into, make_ema, update_ema
from prunegen.models.family import GenerativeFamily, should_log
from prunegen.models.losses import LOSSES
from prunegen.models.objective import GeneratorLR, GeneratorObjective

D_POLICIES = ("train", "freeze", "none")


def check_labels_match(model: Any, datamodule: Any) -> None:
    """A conditional model needs a labelled datamodule with the same number of classes."""
    have = getattr(datamodule, "num_classes", None)
    if model.num_classes and have != model.num_classes:
        raise ValueError(
            f"the model is conditional on {model.num_classes} classes but data {getattr(datamodule, 'name', '?')!r} "
            f"has num_classes={have}; set data.num_classes / the model's num_classes to agree"
        )


class GAN(GenerativeFamily, GeneratorObjective, L.LightningModule):
    """G and D trained alternately; `sample` draws from G (or from its EMA when `ema_decay` is set).

    EMA and pruning: masks go on `generator` only; `ema` averages the masked weights and carries the
    same zeros (see `models/ema.py`), so the scores of a pruned run are those of a model with the
    generator's sparsity. Export and compaction take `generator`; `use_ema_weights()` copies the
    average into it first when the EMA weights are the ones to deploy.
    """

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
        diffaugment: str | list[str] | None = None,
        ema_decay: float = 0.0,
        name: str = "dcgan",
    ) -> None:
        super().__init__()
        check_choice("model.loss", loss, LOSSES)
        if n_critic < 1:
            raise ValueError(f"model.n_critic must be >= 1, got {n_critic}")
        if not 0 <= ema_decay < 1:
            raise ValueError(f"model.ema_decay must be in [0, 1) (0: no EMA), got {ema_decay}")
        if getattr(discriminator, "num_classes", 0) != generator.num_classes:
            raise ValueError(
                f"model.discriminator.num_classes ({getattr(discriminator, 'num_classes', 0)}) must equal "
                f"model.generator.num_classes ({generator.num_classes})"
            )
        self.save_hyperparameters(ignore=["generator", "discriminator", "optimizer_g", "optimizer_d"])
        self.automatic_optimization = False
        self.generator, self.discriminator = generator, discriminator
        self.optimizer_g, self.optimizer_d = optimizer_g, optimizer_d
        self.gan_loss = LOSSES[loss]
        self.d_loss_fn, self.g_loss_fn = self.gan_loss.d, self.gan_loss.g
        self.augment = parse_policy(diffaugment)
        if ema_decay > 0:  # only registered when on: `ema` is then a top-level module beside `generator`
            self.ema = make_ema(generator)
        self.name = name
        self._init_objective()  # base loss = the adversarial G loss; terms added e.g. by distillation
        self.d_policy, self.n_critic = "train", n_critic

    @override
    def _sampler(self) -> nn.Module:
        if self.hparams.ema_decay > 0:
            apply_masks(self.ema, self.generator)  # masks may have changed since the last update
            return self.ema
        return self.generator

    @override
    def use_ema_weights(self) -> None:
        """Copy the EMA weights (and BN statistics) into `generator`, e.g. before export; masks are kept."""
        if self.hparams.ema_decay > 0:
            load_ema_into(self.generator, self.ema)

    @override
    def reset_ema(self) -> None:
        """The EMA becomes an exact copy of the generator's effective weights (IMP's rewinds call this)."""
        if self.hparams.ema_decay > 0:
            update_ema(self.ema, self.generator, decay=0.0)

    @override
    def setup(self, stage: str) -> None:
        if self.trainer is not None and self.trainer.datamodule is not None:
            check_labels_match(self, self.trainer.datamodule)
        if self.trainer is not None and self.trainer.world_size > 1:
            # All ranks start from one seed: without an offset they would draw the same latents, and the
            # generator's gradients (which see only z and the synced D) would be identical on every rank.
            torch.manual_seed(torch.initial_seed() + self.global_rank)

    def set_discriminator_policy(self, policy: str = "train", n_critic: int | None = None) -> None:
        """What the generator is trained against from now on. train: D trains every batch and G every
        `n_critic`-th (None: `model.n_critic`); freeze: D judges G's samples but no longer trains; none:
        no D at all (the adversarial term is off whatever `base_loss_weight` says)."""
        check_choice("discriminator policy", policy, D_POLICIES)
        if n_critic is not None and n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {n_critic}")
        self.d_policy, self.n_critic = policy, n_critic or self.hparams.n_critic

    def reset_discriminator_optimizer(self, lr_ratio: float = 1.0, clear_moments: bool = False) -> None:
        """D's learning rate becomes `lr_ratio` times its configured one; `clear_moments` drops its Adam state."""
        opt_d = self.optimizers(use_pl_optimizer=False)[1]
        if clear_moments:
            opt_d.state.clear()
        for group in opt_d.param_groups:
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = group["initial_lr"] * lr_ratio

    def _generator_optimization(self) -> tuple[torch.optim.Optimizer, GeneratorLR]:
        return self.optimizers(use_pl_optimizer=False)[0], self.lr_schedulers()

    def _d(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """D's logits, after DiffAugment when it is on (the same policy for real and fake)."""
        return self.discriminator(diff_augment(x, self.augment) if self.augment else x, labels)

    def _d_loss(self, x: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        d_loss = self.gan_loss.d(self._d(x, labels), self._d(fake, labels))
        if self.gan_loss.penalty is not None:
            critic = lambda images: self._d(images, labels)  # noqa: E731
            d_loss = d_loss + self.hparams.gp_weight * self.gan_loss.penalty(critic, x, fake)
        return d_loss

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        labels = y if self.num_classes else None
        z = torch.randn(x.shape[0], self.latent_dim, device=self.device)
        if self.d_policy == "train":
            self._discriminator_step(x, self.generator(z, labels).detach(), labels)
        if self.d_policy != "train" or batch_idx % self.n_critic == 0:
            self._generator_step(z, labels)

    def _discriminator_step(self, x: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None) -> None:
        opt_d = self.optimizers()[1]
        d_loss = self._d_loss(x, fake, labels)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        opt_d.step()
        if should_log(self):  # Lightning's self.log costs ~1.7 ms a call: only where it is read (prunegen.models.family)
            self.log("train/d_loss", d_loss, prog_bar=True)

    def _generator_step(self, z: torch.Tensor, labels: torch.Tensor | None) -> None:
        """G minimises `base_loss_weight` * the adversarial loss (`train/g_loss`) plus the added terms
        (`train/g_total` is that sum); then the EMA, when kept, follows G."""
        fake = self._generate(z, labels)
        logs: dict[str, torch.Tensor] = {}
        total = None
        if self.base_loss_weight and self.d_policy != "none":
            logs["train/g_loss"] = g_loss = self.g_loss_fn(self._d(fake, labels))
            total = g_loss if self.base_loss_weight == 1 else self.base_loss_weight * g_loss
        total = self._add_terms(total, z, labels, fake, logs)
        if total is None:
            raise RuntimeError("the generator has nothing to minimise: discriminator policy 'none' and no added loss term")
        opt_g = self.optimizers()[0]
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(total)
        opt_g.step()
        self.lr_schedulers().step()
        self._update_ema()  # after a generator step: an EMA, when kept, follows G (a distilled student too)
        logs["train/g_total"] = total
        if should_log(self):
            for key, value in logs.items():
                self.log(key, value.detach(), prog_bar=key == "train/g_loss")

    def _update_ema(self) -> None:
        if self.hparams.ema_decay <= 0:
            return
        step = self.global_step
        decay = min(self.hparams.ema_decay, (1 + step) / (10 + step))  # warm-up: early average follows G
        update_ema(self.ema, self.generator, decay)

    def configure_optimizers(self) -> tuple[list[torch.optim.Optimizer], list[GeneratorLR]]:
        """[G's optimizer, D's], and G's lr plan (stepped after every G step; see `GeneratorLR`)."""
        opt_g = self.optimizer_g(list(ordered_parameters(self.generator)))
        opt_d = self.optimizer_d(list(ordered_parameters(self.discriminator)))
        return [opt_g, opt_d], [GeneratorLR(opt_g)]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Runs before the strict state-dict load: re-create the masks a pruned checkpoint holds.
        restore_masks(self, checkpoint["state_dict"])
