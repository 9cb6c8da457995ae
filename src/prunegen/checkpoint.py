"""Rebuild a trained (possibly pruned) model from its checkpoint and the run's saved Hydra config."""

from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from prunegen.pruning.masks import restore_masks


def run_config(ckpt_path: str | Path) -> DictConfig:
    """The composed config of the run that wrote `<run>/checkpoints/<name>.ckpt`."""
    ckpt_path = Path(ckpt_path)
    if not ckpt_path.is_file():
        raise FileNotFoundError(f"ckpt_path: no checkpoint at {ckpt_path}")
    cfg_path = ckpt_path.resolve().parent.parent / ".hydra" / "config.yaml"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"ckpt_path: {ckpt_path} has no run config at {cfg_path} (was it written by prunegen-train?)")
    return OmegaConf.load(cfg_path)


def load_weights(model: L.LightningModule, ckpt_path: str | Path, map_location: str = "cpu") -> None:
    """Load a (possibly pruned) checkpoint's state into `model`, its masks re-created first."""
    state = torch.load(ckpt_path, map_location=map_location, weights_only=True)["state_dict"]
    restore_masks(model, state)
    model.load_state_dict(state)


def load_model(ckpt_path: str | Path, map_location: str = "cpu") -> tuple[L.LightningModule, DictConfig]:
    """(model in eval mode with its masks, the run's config)."""
    cfg = run_config(ckpt_path)
    model = instantiate(cfg.model)
    load_weights(model, ckpt_path, map_location)
    return model.eval(), cfg
