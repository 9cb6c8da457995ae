"""Distillation from the dense generator while a pruned one is fine-tuned (one concern, one place).

The student is a GAN's generator (`Distiller.gan_step`, manual optimization) or a VAE's decoder
(`Distiller.vae_step`, latents from the prior); a GAN with an EMA is distilled from, restarted from and
exported with its EMA weights (the ones it is scored with).

The teacher is a frozen copy of the dense generator: loaded from `teacher_ckpt`, or snapshotted from
the model itself at the end of `snapshot_epoch` (the first pruning round; this callback runs before
the pruning callback). The student gets, on shared latents: an output loss, a feature-matching loss
at every activation (masked widths equal the teacher's, so no adapters), and optionally the
adversarial loss and a discriminator-feature loss. `d_policy` says what the discriminator does.
"""

import math
from contextlib import contextmanager
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from torch import nn

from prunegen.models.ema import deploy_weights
from prunegen.pruning.masks import unmasked_copy

D_POLICIES = ("none", "train", "freeze", "reset")
STUDENT_BN = ("train", "frozen")
LR_SCHEDULES = ("constant", "cosine")
ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.SiLU, nn.GELU)


@contextmanager
def capture(module: nn.Module, features: list[torch.Tensor]):
    """Collect the outputs of every activation layer of `module` during the block."""
    hooks = [m.register_forward_hook(lambda _m, _i, out: features.append(out)) for m in module.modules() if isinstance(m, ACTIVATIONS)]
    try:
        yield features
    finally:
        for h in hooks:
            h.remove()


class Distiller:
    """Losses and the fine-tuning step of a student generator against a frozen teacher."""

    def __init__(
        self,
        teacher: nn.Module,
        output_weight: float = 1.0,
        output_loss: str = "l1",
        feature_weight: float = 0.0,
        adversarial_weight: float = 0.0,
        d_feature_weight: float = 0.0,
        d_policy: str = "none",
        student_bn: str = "train",
    ) -> None:
        self.teacher = teacher.eval().requires_grad_(False)
        self.student_bn = student_bn
        self.output_weight, self.feature_weight = output_weight, feature_weight
        self.adversarial_weight, self.d_feature_weight = adversarial_weight, d_feature_weight
        self.output_fn = {"l1": F.l1_loss, "mse": F.mse_loss}[output_loss]
        self.d_policy = d_policy

    def loss(self, student: nn.Module, z: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """(distillation loss, student output, logs) on shared latents."""
        with torch.no_grad(), capture(self.teacher, []) as t_feats:
            t_out = self.teacher(z, labels)
        if self.student_bn == "frozen":  # normalise with the running statistics, as the deployed student will
            for m in student.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        with capture(student, []) as s_feats:
            s_out = student(z, labels)
        logs = {"distill/output": self.output_fn(s_out, t_out)}
        loss = self.output_weight * logs["distill/output"]
        if self.feature_weight:
            logs["distill/features"] = sum(F.mse_loss(s, t) for s, t in zip(s_feats, t_feats)) / max(1, len(t_feats))
            loss = loss + self.feature_weight * logs["distill/features"]
        return loss, s_out, logs

    def d_feature_loss(self, discriminator: nn.Module, fake: torch.Tensor, target: torch.Tensor, labels) -> torch.Tensor:
        """Perceptual loss in the discriminator's activations, student output vs teacher output."""
        with torch.no_grad(), capture(discriminator, []) as t_feats:
            discriminator(target, labels)
        with capture(discriminator, []) as s_feats:
            discriminator(fake, labels)
        return sum(F.mse_loss(s, t) for s, t in zip(s_feats, t_feats)) / max(1, len(t_feats))

    def vae_step(self, module: L.LightningModule, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """The loss of one fine-tuning step of a VAE's decoder (automatic optimization), on latents from the
        prior (those the decoder is sampled with); the encoder gets no gradient and stays as it was."""
        z = torch.randn(x.shape[0], module.latent_dim, device=module.device)
        loss, _, logs = self.loss(module.generator, z, labels)
        for key, value in logs.items():
            module.log(key, value.detach())
        module.log("train/distill", loss.detach(), prog_bar=True)
        return loss

    def gan_step(self, module: L.LightningModule, x: torch.Tensor, labels: torch.Tensor | None) -> None:
        """One fine-tuning step of a GAN's generator (manual optimization), D per `d_policy`."""
        opt_g, opt_d = module.optimizers()
        z = torch.randn(x.shape[0], module.latent_dim, device=module.device)
        loss, fake, logs = self.loss(module.generator, z, labels)
        if self.d_policy in ("train", "reset"):
            d_loss = module._d_step(x, fake.detach(), labels)
            opt_d.zero_grad(set_to_none=True)
            module.manual_backward(d_loss)
            opt_d.step()
            logs["train/d_loss"] = d_loss
        if self.d_policy != "none" and self.adversarial_weight:
            logs["distill/adversarial"] = module.g_loss_fn(module._d(fake, labels))
            loss = loss + self.adversarial_weight * logs["distill/adversarial"]
        if self.d_policy != "none" and self.d_feature_weight:
            with torch.no_grad():
                target = self.teacher(z, labels)
            logs["distill/d_features"] = self.d_feature_loss(module.discriminator, fake, target, labels)
            loss = loss + self.d_feature_weight * logs["distill/d_features"]
        opt_g.zero_grad(set_to_none=True)
        module.manual_backward(loss)
        opt_g.step()
        module._update_ema()  # an EMA, when kept, now averages the student (it is what is scored)
        logs["train/g_loss"] = loss
        for key, value in logs.items():  # train/* as the GAN step logs them (Lightning wants the same arguments)
            module.log(key, value.detach(), prog_bar=key.startswith("train/"))


class DistillationCallback(Callback):
    """Attaches a `Distiller` to the model (as `pl_module.distiller`) from the teacher's creation on."""

    def __init__(
        self,
        teacher_ckpt: str | None = None,
        snapshot_epoch: int = 0,
        output_weight: float = 1.0,
        output_loss: str = "l1",
        feature_weight: float = 0.0,
        adversarial_weight: float = 0.0,
        d_feature_weight: float = 0.0,
        d_policy: str = "none",
        d_lr_ratio: float = 1.0,
        g_lr: float | None = 1e-3,
        student_bn: str = "train",
        lr_schedule: str = "constant",
    ) -> None:
        if d_policy not in D_POLICIES:
            raise ValueError(f"distill.d_policy must be one of {D_POLICIES}, got {d_policy!r}")
        if output_loss not in ("l1", "mse"):
            raise ValueError(f"distill.output_loss must be one of ('l1', 'mse'), got {output_loss!r}")
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"distill.lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}")
        if student_bn not in STUDENT_BN:
            raise ValueError(f"distill.student_bn must be one of {STUDENT_BN}, got {student_bn!r}")
        if d_policy == "none" and (adversarial_weight or d_feature_weight):
            raise ValueError("distill.adversarial_weight / d_feature_weight need a discriminator: set distill.d_policy")
        self.teacher_ckpt, self.snapshot_epoch, self.d_lr_ratio, self.g_lr = teacher_ckpt, snapshot_epoch, d_lr_ratio, g_lr
        self.lr_schedule = lr_schedule
        self._start = 0  # the first epoch of distillation (for the cosine schedule)
        self.weights = dict(output_weight=output_weight, output_loss=output_loss, feature_weight=feature_weight,
                            adversarial_weight=adversarial_weight, d_feature_weight=d_feature_weight, d_policy=d_policy,
                            student_bn=student_bn)
        self.teacher: nn.Module | None = None
        self._pending: dict[str, torch.Tensor] | None = None
        self._d_state: dict[str, torch.Tensor] | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.lr_schedule == "cosine" and not (trainer.max_epochs or 0) > 0:
            raise ValueError("distill.lr_schedule=cosine decays the student's lr to 0 at trainer.max_epochs: set it")
        if self.weights["d_policy"] != "none" and not hasattr(pl_module, "discriminator"):
            raise ValueError(f"distill.d_policy={self.weights['d_policy']!r} needs a discriminator, and model "
                             f"{getattr(pl_module, 'name', '?')!r} has none: use distill.d_policy=none (distill=output)")
        if self.teacher_ckpt and self.teacher is None:
            from prunegen.checkpoint import load_model

            dense = load_model(self.teacher_ckpt)[0]
            deploy_weights(dense)
            self.teacher = unmasked_copy(dense.generator)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._pending is not None:  # resumed: rebuild the teacher; optimizers were restored as they were
            self.teacher = unmasked_copy(pl_module.generator)
            self.teacher.load_state_dict(self._pending)
            self._pending = None
            pl_module.distiller = Distiller(self.teacher.to(pl_module.device), **self.weights)
        elif self.teacher is not None:
            self._start = trainer.current_epoch
            self._activate(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.teacher is None and trainer.current_epoch == self.snapshot_epoch:
            self._start = trainer.current_epoch + 1
            self._activate(trainer, pl_module)  # snapshots the teacher, before the pruning callback's round

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        if self.lr_schedule == "cosine" and pl_module.distiller is not None and self.g_lr is not None:
            per_epoch = trainer.num_training_batches
            done = (trainer.current_epoch - self._start) * per_epoch + batch_idx
            span = max(1, trainer.max_epochs - self._start) * per_epoch
            for group in trainer.optimizers[0].param_groups:
                group["lr"] = 0.5 * self.g_lr * (1 + math.cos(math.pi * min(1.0, done / span)))

    def _activate(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        deploy_weights(pl_module)  # the student starts from (and a snapshot takes) the weights scored as dense
        if self.teacher is None:
            self.teacher = unmasked_copy(pl_module.generator)
        self.teacher.to(pl_module.device)
        pl_module.distiller = Distiller(self.teacher, **self.weights)
        # A new objective: Adam's moments from adversarial training (measured: they stalled the L1 at
        # ~0.54 for 15 epochs) are dropped, and the student gets its own learning rate.
        opt_g = trainer.optimizers[0]
        opt_g.state.clear()
        if self.g_lr is not None:
            for group in opt_g.param_groups:
                group["lr"] = self.g_lr
        if len(trainer.optimizers) > 1:
            opt_d = trainer.optimizers[1]
            if self.weights["d_policy"] == "reset":
                if self._d_state is None:
                    self._d_state = {k: v.clone() for k, v in pl_module.discriminator.state_dict().items()}
                pl_module.discriminator.load_state_dict(self._d_state)
                opt_d.state.clear()
            for group in opt_d.param_groups:
                group.setdefault("initial_lr", group["lr"])
                group["lr"] = group["initial_lr"] * self.d_lr_ratio

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pl_module.distiller = None

    def state_dict(self) -> dict[str, Any]:
        teacher = self.teacher.state_dict() if self.teacher is not None else None
        return {"teacher": teacher, "d_state": self._d_state, "start": self._start}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending, self._d_state = state_dict["teacher"], state_dict.get("d_state")
        self._start = state_dict.get("start", 0)
