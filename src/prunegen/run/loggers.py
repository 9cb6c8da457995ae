"""What Lightning's loggers do not log by themselves: sample grids, weight histograms at pruning rounds, the
run's hyperparameters beside its final score; and a W&B logger whose run id is the run folder's.

Every function takes the trainer and writes into each of its loggers that can show the thing
(TensorBoard, W&B); the CSV logger keeps the scalars only.
"""

import hashlib
import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from torchvision.utils import make_grid

from prunegen.choices import check_choice
from prunegen.masks import effective_weight, prunable_layers
from prunegen.run.record import flatten, hydra_overrides, parse_overrides


def epoch_end_step(trainer: L.Trainer) -> int:
    """The step Lightning logs this epoch's epoch-end scalars at (batches that stepped, minus the one it
    steps back for them), so images and histograms line up with `val/fid` and the rest of that epoch.
    (`global_step` counts optimizer steps: two per batch in a GAN.)"""
    return max(int(getattr(trainer.fit_loop.epoch_loop, "_batches_that_stepped", trainer.global_step)) - 1, 0)


def image_grid(images: torch.Tensor, nrow: int = 8) -> torch.Tensor:
    """Images in [-1, 1] (B, C, H, W) -> one grid (C, H', W') in [0, 1]."""
    return make_grid(images.detach().cpu().float(), nrow=nrow, normalize=True, value_range=(-1, 1))


def log_image(trainer: L.Trainer, tag: str, grid: torch.Tensor, step: int) -> None:
    """One image (C, H, W) in [0, 1] into every logger that shows images."""
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(tag, grid, step)
        elif isinstance(logger, WandbLogger):
            logger.log_image(key=tag, images=[grid.permute(1, 2, 0).numpy()], step=step)


def log_histogram(trainer: L.Trainer, tag: str, values: torch.Tensor, step: int) -> None:
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_histogram(tag, values.detach().cpu().float(), step)
        elif isinstance(logger, WandbLogger):
            import wandb

            logger.experiment.log({tag: wandb.Histogram(values.detach().cpu().float().numpy()), "trainer/global_step": step})


def log_hparams(trainer: L.Trainer, params: dict[str, Any], metrics: dict[str, float]) -> None:
    """TensorBoard's HParams tab (params beside `metrics`, one session per run); W&B's config and summary."""
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(params, metrics)
        elif isinstance(logger, WandbLogger):
            logger.log_hyperparams(params)
            logger.experiment.summary.update(metrics)


def _out_channel_dim(layer: torch.nn.Module) -> int:
    return 1 if isinstance(layer, torch.nn.ConvTranspose2d) else 0  # ConvTranspose weights are (in, out, k, k)


def log_layer_histograms(trainer: L.Trainer, root: torch.nn.Module, targets: list[str], step: int) -> None:
    """Per prunable layer under `targets`: its effective weights (pruned ones at 0) and the L2 norm of each
    output channel (removed channels at 0), as histograms."""
    for path, layer in prunable_layers(root, targets).items():
        w = effective_weight(layer).detach()
        norms = w.transpose(0, _out_channel_dim(layer)).flatten(1).norm(dim=1)
        log_histogram(trainer, f"prune/weights/{path}", w.flatten(), step)
        log_histogram(trainer, f"prune/channel_norm/{path}", norms, step)


def _scalar(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def override_params(overrides: list[str]) -> dict[str, Any]:
    """["pruning.final_sparsity=0.5", "+x=a", "~y"] -> {"pruning.final_sparsity": 0.5, "x": "a"} (numbers as
    numbers, so TensorBoard's HParams tab sorts and filters them)."""
    return {k: _scalar(v) for k, v in parse_overrides(overrides).items() if v is not None}


class LoggerExtrasCallback(Callback):
    """Weight histograms whenever the masks of `targets` change (each pruning round), and at the end of fit
    the run's hyperparameters (the module's scalar hparams and the command-line overrides: what a sweep
    varies) with the final `metric` as the HParams metric `hp/<metric>`."""

    def __init__(self, targets: list[str] = ("generator",), metric: str = "val/fid", histograms: bool = True) -> None:
        self.targets, self.metric, self.histograms = list(targets), metric, histograms
        self._nonzero: int | None = None

    def _media(self, trainer: L.Trainer) -> bool:
        return trainer.is_global_zero and any(isinstance(lg, (TensorBoardLogger, WandbLogger)) for lg in trainer.loggers)

    def _maybe_log_histograms(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.histograms or not self._media(trainer):
            return
        layers = prunable_layers(pl_module, self.targets)
        nonzero = sum(int(torch.count_nonzero(effective_weight(m))) for m in layers.values())
        if nonzero != self._nonzero:  # at the start, then after every round that changed a mask
            log_layer_histograms(trainer, pl_module, self.targets, epoch_end_step(trainer))
            self._nonzero = nonzero

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._maybe_log_histograms(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._maybe_log_histograms(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._media(trainer):
            return
        params = {k: v for k, v in flatten(dict(pl_module.hparams)).items() if isinstance(v, (int, float, str, bool))}
        params.update(override_params(hydra_overrides()))
        value = trainer.callback_metrics.get(self.metric)
        metrics = {f"hp/{self.metric.split('/')[-1]}": float(value)} if value is not None else {}
        log_hparams(trainer, params, metrics)

    def record(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        """Where this run's logs are, for metrics.json."""
        out: dict[str, Any] = {}
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                out["tensorboard"] = str(Path(logger.log_dir))
            elif isinstance(logger, WandbLogger):
                out["wandb"] = {"id": logger.version, "dir": logger.save_dir}
        return {"loggers": out} if out else {}


def wandb_run_id(run_dir: str | Path, seed: int) -> str:
    """The same id for every attempt of a run (requeue, resume): a hash of its folder and seed. A sweep
    folder is `<sweep dir>/<job number>`, so sweep points differ."""
    return hashlib.sha1(f"{Path(run_dir).resolve()}|{seed}".encode()).hexdigest()[:16]


def wandb_logger(run_dir: str, seed: int, project: str = "prunegen", mode: str = "offline",
                 group: str | None = None, tags: list[str] | None = None, **kwargs: Any) -> WandbLogger:
    """Lightning's WandbLogger, offline unless `mode`/WANDB_MODE says otherwise, writing into the run folder;
    group = the experiment's name, tags = the command-line overrides (W&B allows 64 characters a tag)."""
    from hydra.core.hydra_config import HydraConfig

    check_choice("logger.wandb.mode", mode, ("offline", "online", "disabled"))
    if group is None and HydraConfig.initialized():
        group = HydraConfig.get().runtime.choices.get("experiment")
    tags = [t[:64] for t in (tags if tags is not None else hydra_overrides())]
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    return WandbLogger(
        name=os.path.basename(os.path.normpath(run_dir)), save_dir=run_dir, id=wandb_run_id(run_dir, seed),
        project=project, mode=mode, group=group, tags=tags, resume="allow", **kwargs,
    )
