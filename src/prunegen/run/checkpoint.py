"""Self-describing checkpoints: every checkpoint carries the resolved config that rebuilds its model,
so it can be loaded, scored or exported wherever it is copied."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, OmegaConf
from typing_extensions import override

from prunegen.masks import restore_masks

KEY = "prunegen"  # the checkpoint's top-level key: {"config": resolved config, "version": FORMAT_VERSION}
FORMAT_VERSION = 1


class ConfigInCheckpoint(Callback):
    """Writes the run's resolved config into every checkpoint (`checkpoint["prunegen"]`).

    The config is resolved once, here (before training starts), into builtins, so checkpoints still
    load with `weights_only=True`.
    """

    def __init__(self, config: Mapping[str, Any] | DictConfig) -> None:
        cfg = config if isinstance(config, DictConfig) else OmegaConf.create(dict(config))
        self.config: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)

    @override
    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint[KEY] = {"config": self.config, "version": FORMAT_VERSION}


def _load(ckpt_path: str | Path, map_location: str = "cpu") -> dict[str, Any]:
    ckpt_path = Path(ckpt_path)
    if not ckpt_path.is_file():
        raise FileNotFoundError(f"ckpt_path: no checkpoint at {ckpt_path}")
    return torch.load(ckpt_path, map_location=map_location, weights_only=True)


def _config_of(checkpoint: dict[str, Any], ckpt_path: str | Path) -> DictConfig:
    if KEY in checkpoint:
        return OmegaConf.create(checkpoint[KEY]["config"])
    # Checkpoints written before configs were stored inside them: the run folder's saved config.
    cfg_path = Path(ckpt_path).resolve().parent.parent / ".hydra" / "config.yaml"
    if not cfg_path.is_file():
        raise FileNotFoundError(
            f"ckpt_path: {ckpt_path} carries no config (no '{KEY}' key) and has no run config at {cfg_path} "
            "(was it written by prunegen-train?)"
        )
    return OmegaConf.load(cfg_path)


def run_config(ckpt_path: str | Path) -> DictConfig:
    """The composed config of the run that wrote the checkpoint (stored inside it)."""
    return _config_of(_load(ckpt_path), ckpt_path)


def load_weights(model: L.LightningModule, ckpt_path: str | Path, map_location: str = "cpu") -> None:
    """Load a (possibly pruned) checkpoint's state into `model`, its masks re-created first."""
    load_state(model, _load(ckpt_path, map_location)["state_dict"])


def load_state(model: L.LightningModule, state: dict[str, torch.Tensor]) -> None:
    """Load a (possibly pruned) state dict into `model`, its masks re-created first."""
    restore_masks(model, state)
    model.load_state_dict(state)


def load_model(ckpt_path: str | Path, map_location: str = "cpu") -> tuple[L.LightningModule, DictConfig]:
    """(model in eval mode with its masks, the run's config), from the checkpoint alone."""
    checkpoint = _load(ckpt_path, map_location)
    cfg = _config_of(checkpoint, ckpt_path)
    model = instantiate(cfg.model)
    load_state(model, checkpoint["state_dict"])
    return model.eval(), cfg


def restore_from_workers(trainer: Any, model: L.LightningModule, last_ckpt: Path) -> None:
    """ddp_spawn trains in worker processes: the masks and every callback's state (its results included)
    come back through `last.ckpt` (Lightning reloads only the plain weights, non-strictly)."""
    if getattr(trainer.strategy, "_start_method", None) != "spawn" or not Path(last_ckpt).is_file():
        return
    checkpoint = torch.load(last_ckpt, map_location="cpu", weights_only=False)
    load_state(model, checkpoint["state_dict"])
    states = checkpoint.get("callbacks", {})
    for callback in trainer.callbacks:
        if callback.state_key in states:
            callback.load_state_dict(states[callback.state_key])
