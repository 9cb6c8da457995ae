"""Distillation from the dense generator while a pruned one is fine-tuned: a loss term and a callback.

The model keeps its training step. `DistillationCallback` adds a `Distiller` (a `GeneratorLossTerm`,
see `prunegen.models.objective`) to the model's generator loss and sets what else the student is
trained against: the base loss weight (a GAN's adversarial term, `adversarial_weight`; a VAE's ELBO:
off, so its encoder stays as it was and the decoder learns on latents from the prior) and, for a GAN,
the discriminator policy `d_policy`. The student gets, on shared latents, an output loss, a
feature-matching loss at every activation (masked widths equal the teacher's, so no adapters) and,
with a discriminator, optionally a discriminator-feature loss. Logged under `distill/`.

A diffusion model is distilled step by step, not image by image: `DenoisingDistiller` pulls the student
UNet's predicted noise toward the teacher's on the same (x_t, t) — x_t made from the same images, noise and
timesteps — beside the denoising loss (weight `denoising_weight`; 1 keeps Diff-Pruning's own objective).

The teacher is a frozen copy of the dense generator: loaded from `teacher_ckpt`, or snapshotted from
the model after the last training batch of `snapshot_epoch` (null: the first round of the pruning
callback's schedule, read from the trainer's callbacks, so no config interpolates another group's keys).
That hook runs before every callback's `on_train_epoch_end` (and validation), so the teacher is the dense
model whatever the order of the callbacks. A GAN with an EMA is distilled from, restarted from and
exported with its EMA weights (the ones it is scored with).

When distillation starts, the student's Adam moments are dropped (measured: the moments of
adversarial training stalled the L1 at ~0.54 for 15 epochs) and its lr becomes `g_lr`, constant or
cosine to 0 at `trainer.max_epochs` — through the model's public `reset_generator_optimizer`, whose
plan is a Lightning lr scheduler (so a resumed run continues it).
"""

import math
from contextlib import contextmanager, nullcontext
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from torch import nn

from prunegen.choices import check_choice
from prunegen.masks import forget_alive_channels, unmasked_copy
from prunegen.models.objective import GeneratorLossTerm

D_POLICIES = ("none", "train", "freeze", "reset")
STUDENT_BN = ("train", "frozen")
LR_SCHEDULES = ("constant", "cosine")
OUTPUT_LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss}
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


@contextmanager
def running_batchnorm(module: nn.Module, on: bool):
    """With `on`, BatchNorm layers normalise with their running statistics (as deployed) during the block."""
    layers = [m for m in module.modules() if on and isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    for m in layers:
        m.eval()
    try:
        yield
    finally:
        for m in layers:
            m.train()


def frozen(module: nn.Module) -> nn.Module:
    return module.eval().requires_grad_(False)


def feature_mse(student: list[torch.Tensor], teacher: list[torch.Tensor]) -> torch.Tensor:
    return sum(F.mse_loss(s, t) for s, t in zip(student, teacher)) / max(1, len(teacher))


class Distiller(GeneratorLossTerm):
    """The distillation term: output loss (+ feature matching) of the student against a frozen teacher."""

    def __init__(self, teacher: nn.Module, output_weight: float = 1.0, output_loss: str = "l1",
                 feature_weight: float = 0.0, student_bn: str = "train") -> None:
        super().__init__("distill")
        self.teacher = frozen(teacher)
        self.output_weight, self.feature_weight = output_weight, feature_weight
        self.output_fn, self.student_bn = OUTPUT_LOSSES[output_loss], student_bn
        self._student_features: list[torch.Tensor] = []

    @contextmanager
    def watch(self, generator: nn.Module):
        self._student_features = []
        features = capture(generator, self._student_features) if self.feature_weight else nullcontext()
        with running_batchnorm(generator, self.student_bn == "frozen"), features:
            yield

    def target(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """The teacher's output the student's is compared with."""
        return self.teacher(z, labels)

    def __call__(self, z: torch.Tensor, labels: torch.Tensor | None, fake: torch.Tensor) -> tuple[torch.Tensor, dict]:
        with torch.no_grad(), capture(self.teacher, []) if self.feature_weight else nullcontext([]) as t_feats:
            target = self.target(z, labels)
        logs = {"distill/output": self.output_fn(fake, target)}
        loss = self.output_weight * logs["distill/output"]
        if self.feature_weight:
            logs["distill/features"] = feature_mse(self._student_features, t_feats)
            loss = loss + self.feature_weight * logs["distill/features"]
        self._student_features = []
        logs["distill/loss"] = loss
        return loss, logs

    def loss(self, student: nn.Module, z: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """(distillation loss, student output, logs) of `student` on (z, labels), outside a training step."""
        with self.watch(student):
            out = self.student_output(student, z, labels)
        loss, logs = self(z, labels, out)
        return loss, out, logs

    def student_output(self, student: nn.Module, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return student(z, labels)


class DenoisingDistiller(Distiller):
    """Distillation of a diffusion UNet: called with (x_t, t, student's eps), it compares the student's
    predicted noise with the teacher's `eps(x_t, t)` (and, with `feature_weight`, their activations)."""

    def target(self, x_t: torch.Tensor, t: torch.Tensor | None) -> torch.Tensor:
        return self.teacher.eps(x_t, t)

    def student_output(self, student: nn.Module, x_t: torch.Tensor, t: torch.Tensor | None) -> torch.Tensor:
        return student.eps(x_t, t)


class DiscriminatorFeatures(GeneratorLossTerm):
    """Perceptual loss in the discriminator's activations, student output vs teacher output."""

    def __init__(self, teacher: nn.Module, discriminator: nn.Module, weight: float) -> None:
        super().__init__("distill_d_features", weight=weight)
        self.teacher, self.discriminator = frozen(teacher), discriminator

    def __call__(self, z: torch.Tensor, labels: torch.Tensor | None, fake: torch.Tensor) -> tuple[torch.Tensor, dict]:
        with torch.no_grad(), capture(self.discriminator, []) as t_feats:
            self.discriminator(self.teacher(z, labels), labels)
        with capture(self.discriminator, []) as s_feats:
            self.discriminator(fake, labels)
        loss = feature_mse(s_feats, t_feats)
        return loss, {"distill/d_features": loss}


def first_round_epoch(callbacks: list[Callback]) -> int:
    """The epoch at whose end the first pruning round falls: the `start` of the first epoch schedule among
    `callbacks` (the public `schedule` of PruningCallback, its subclasses and LightningModelPruning); 0 without
    one (no pruning, or IMP's geometric rounds, which have no start epoch). Read by attribute: distillation
    sits below pruning and imports none of it."""
    for callback in callbacks:
        start = getattr(getattr(callback, "schedule", None), "start", None)
        if isinstance(start, int):
            return start
    return 0


class DistillationCallback(Callback):
    """Adds the distillation terms to the model's generator loss from the teacher's creation on."""

    def __init__(
        self,
        teacher_ckpt: str | None = None,
        snapshot_epoch: int | None = None,
        output_weight: float = 1.0,
        output_loss: str = "l1",
        feature_weight: float = 0.0,
        adversarial_weight: float = 0.0,
        d_feature_weight: float = 0.0,
        denoising_weight: float = 1.0,
        d_policy: str = "none",
        d_lr_ratio: float = 1.0,
        g_lr: float | None = 1e-3,
        student_bn: str = "train",
        lr_schedule: str = "constant",
    ) -> None:
        for key, value, allowed in [("d_policy", d_policy, D_POLICIES), ("output_loss", output_loss, tuple(OUTPUT_LOSSES)),
                                    ("lr_schedule", lr_schedule, LR_SCHEDULES), ("student_bn", student_bn, STUDENT_BN)]:
            check_choice(f"distill.{key}", value, allowed)
        if d_policy == "none" and (adversarial_weight or d_feature_weight):
            raise ValueError("distill.adversarial_weight / d_feature_weight need a discriminator: set distill.d_policy")
        if denoising_weight < 0:
            raise ValueError(f"distill.denoising_weight must be >= 0 (diffusion: the denoising loss's weight), got {denoising_weight}")
        self.teacher_ckpt, self.snapshot_epoch, self.d_lr_ratio, self.g_lr = teacher_ckpt, snapshot_epoch, d_lr_ratio, g_lr
        self.lr_schedule, self.d_policy = lr_schedule, d_policy
        self.adversarial_weight, self.d_feature_weight = adversarial_weight, d_feature_weight
        self.denoising_weight = denoising_weight
        self.term_settings = dict(output_weight=output_weight, output_loss=output_loss, feature_weight=feature_weight,
                                  student_bn=student_bn)
        self.teacher: nn.Module | None = None
        self.started_epoch: int | None = None  # the first epoch whose steps are distilled
        self._pending: dict[str, torch.Tensor] | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.lr_schedule == "cosine" and not (trainer.max_epochs or 0) > 0:
            raise ValueError("distill.lr_schedule=cosine decays the student's lr to 0 at trainer.max_epochs: set it")
        if self.d_policy != "none" and not hasattr(pl_module, "discriminator"):
            raise ValueError(f"distill.d_policy={self.d_policy!r} needs a discriminator, and model "
                             f"{getattr(pl_module, 'name', '?')!r} has none: use distill.d_policy=none (distill=output)")
        if self.teacher_ckpt and self.teacher is None:
            from prunegen.run.checkpoint import load_model

            dense = load_model(self.teacher_ckpt)[0]
            dense.use_ema_weights()
            self.teacher = frozen(unmasked_copy(dense.generator))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._pending is not None:  # resumed: the optimizers and the lr plan were restored as they were
            self.restore_teacher(pl_module)
            self._attach(pl_module)
        elif self.teacher is not None:
            self.start_distillation(trainer, pl_module, first_epoch=trainer.current_epoch)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._due(trainer) and batch_idx + 1 >= trainer.num_training_batches:
            self.start_distillation(trainer, pl_module, first_epoch=trainer.current_epoch + 1)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._due(trainer):  # an epoch of unknown length: no batch was known to be the last one
            self.start_distillation(trainer, pl_module, first_epoch=trainer.current_epoch + 1)

    def teacher_epoch(self, trainer: L.Trainer) -> int:
        """The epoch after whose last batch the teacher is taken: `snapshot_epoch`, or (null) the first round
        of the pruning schedule among the trainer's callbacks."""
        return self.snapshot_epoch if self.snapshot_epoch is not None else first_round_epoch(trainer.callbacks)

    def _due(self, trainer: L.Trainer) -> bool:
        return self.teacher is None and trainer.current_epoch == self.teacher_epoch(trainer)

    def start_distillation(self, trainer: L.Trainer, pl_module: L.LightningModule, first_epoch: int) -> None:
        """Snapshot the teacher (unless loaded), add the terms, and restart the student's optimizer."""
        pl_module.use_ema_weights()  # the student starts from (and a snapshot takes) the weights scored as dense
        if self.teacher is None:
            self.teacher = frozen(unmasked_copy(pl_module.generator))
        self.started_epoch = first_epoch
        self._attach(pl_module)
        decay_steps = None
        if self.lr_schedule == "cosine":
            if not math.isfinite(trainer.num_training_batches):
                raise ValueError("distill.lr_schedule=cosine needs a known number of batches per epoch (a sized dataset)")
            decay_steps = max(1, trainer.max_epochs - first_epoch) * int(trainer.num_training_batches)
        pl_module.reset_generator_optimizer(self.g_lr, decay_steps)
        if hasattr(pl_module, "discriminator"):
            pl_module.reset_discriminator_optimizer(self.d_lr_ratio, clear_moments=self.d_policy == "reset")

    def _attach(self, pl_module: L.LightningModule) -> None:
        """The terms and what else the student is trained against (settings only: safe to repeat on resume)."""
        self.teacher.to(pl_module.device)
        self._detach(pl_module)
        diffusion = getattr(pl_module, "family", None) == "diffusion"
        pl_module.add_generator_loss((DenoisingDistiller if diffusion else Distiller)(self.teacher, **self.term_settings))
        if self.d_feature_weight:
            pl_module.add_generator_loss(DiscriminatorFeatures(self.teacher, pl_module.discriminator, self.d_feature_weight))
        # a VAE's ELBO is off (its encoder stays as it was); a DDPM keeps its denoising loss beside the term
        pl_module.set_base_loss_weight(self.denoising_weight if diffusion else self.adversarial_weight)
        if hasattr(pl_module, "discriminator"):
            policy = {"reset": "train"}.get(self.d_policy, self.d_policy)
            pl_module.set_discriminator_policy(policy, n_critic=1)  # the student is stepped every batch

    def _detach(self, pl_module: L.LightningModule) -> None:
        for name in ("distill", "distill_d_features"):
            pl_module.remove_generator_loss(name)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.teacher is not None:  # the model's own objective again
            self._detach(pl_module)
            pl_module.set_base_loss_weight(1.0)
            if hasattr(pl_module, "discriminator"):
                pl_module.set_discriminator_policy("train")

    def restore_teacher(self, pl_module: L.LightningModule) -> nn.Module | None:
        """Rebuild the teacher a checkpoint carried (after `load_state_dict`) in the shape of the model's generator."""
        if self._pending is not None:
            self.teacher = unmasked_copy(pl_module.generator)
            forget_alive_channels(self.teacher)  # the student's masks are not the teacher's (it was taken dense)
            self.teacher.load_state_dict(self._pending)
            self.teacher = frozen(self.teacher).to(pl_module.device)
            self._pending = None
        return self.teacher

    def record(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        """This run's part of metrics.json: the recipe and where the teacher came from."""
        self.restore_teacher(pl_module)
        source = None
        if self.teacher is not None:  # a snapshot is taken after the last batch of the epoch before the first distilled one
            source = f"checkpoint {self.teacher_ckpt}" if self.teacher_ckpt else f"snapshot after epoch {self.started_epoch - 1}"
        return {"distill": {"teacher": source, "started_epoch": self.started_epoch,
                            **self.term_settings, "adversarial_weight": self.adversarial_weight,
                            "d_feature_weight": self.d_feature_weight, "denoising_weight": self.denoising_weight,
                            "d_policy": self.d_policy,
                            "d_lr_ratio": self.d_lr_ratio, "g_lr": self.g_lr, "lr_schedule": self.lr_schedule}}

    def state_dict(self) -> dict[str, Any]:
        teacher = self.teacher.state_dict() if self.teacher is not None else None
        return {"teacher": teacher, "start": self.started_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending, self.started_epoch = state_dict["teacher"], state_dict.get("start")
