"""Self-describing checkpoints: every checkpoint carries the resolved config that rebuilds its model,
so it can be loaded, scored or exported wherever it is copied."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.plugins.io import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf
from typing_extensions import override

from prunegen.fileio import atomic_write
from prunegen.masks import restore_masks

KEY = "prunegen"  # the checkpoint's top-level key: {"config": resolved config, "version": FORMAT_VERSION}
FORMAT_VERSION = 1


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch.save, through a temp file and a rename: a run killed while a checkpoint is written
    leaves the previous file whole, never half a file under its name."""

    @override
    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None or "://" in str(path):  # remote storage: Lightning's own writer
            return super().save_checkpoint(checkpoint, path, storage_options)
        atomic_write(path, lambda f: torch.save(checkpoint, f))

    @override
    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        """Lightning's resume reads through `torch_load` (the checkpoints from before plain hyperparameters too)."""
        if weights_only is False or "://" in str(path) or not Path(path).is_file():
            return super().load_checkpoint(path, map_location or (lambda storage, loc: storage), weights_only)
        return torch_load(path, map_location=map_location or "cpu")


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


class NotACheckpoint(ValueError):
    """A file that torch cannot read as a checkpoint (truncated by a kill mid-write, or not one at all)."""


def _omegaconf_globals() -> list[Any]:
    """What omegaconf containers pickle as: data classes only (no code runs to rebuild them)."""
    from collections import defaultdict

    from omegaconf import ListConfig
    from omegaconf.base import ContainerMetadata, Metadata
    from omegaconf.nodes import AnyNode

    return [DictConfig, ListConfig, ContainerMetadata, Metadata, AnyNode, Any, list, dict, int, defaultdict]


def torch_load(ckpt_path: str | Path, map_location: Any = "cpu", mmap: bool = False) -> Any:
    """torch.load(weights_only=True); checkpoints written before the families stored plain hyperparameters
    (`GenerativeFamily.on_save_checkpoint`) hold omegaconf containers, which are allowed for them."""
    try:
        return torch.load(ckpt_path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as err:
        if "GLOBAL omegaconf" not in str(err):
            raise
    with torch.serialization.safe_globals(_omegaconf_globals()):
        return torch.load(ckpt_path, map_location=map_location, weights_only=True, mmap=mmap)


def _load(ckpt_path: str | Path, map_location: str = "cpu") -> dict[str, Any]:
    ckpt_path = Path(ckpt_path)
    if not ckpt_path.is_file():
        raise FileNotFoundError(f"ckpt_path: no checkpoint at {ckpt_path}")
    try:
        checkpoint = torch_load(ckpt_path, map_location=map_location)
    except Exception as err:  # torch's own message would suggest weights_only=False: never the fix here
        raise NotACheckpoint(
            f"{ckpt_path} is not a checkpoint: torch cannot read it ({type(err).__name__}; {ckpt_path.stat().st_size:,} "
            f"bytes; a file cut short by a kill while it was written, or another kind of file)"
        ) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise NotACheckpoint(f"{ckpt_path} is not a Lightning checkpoint (no state_dict in it)")
    return checkpoint


def loadable(ckpt_path: str | Path) -> str | None:
    """Why `ckpt_path` cannot be resumed from (None: it loads)."""
    try:
        _load(ckpt_path)
    except (NotACheckpoint, FileNotFoundError) as err:
        return str(err)
    return None


def newest_loadable(folder: str | Path) -> tuple[Path | None, list[str]]:
    """The newest epoch checkpoint of `folder` that loads (last.ckpt first, then the epoch files, newest
    first), and a line for each one skipped on the way, saying why."""
    folder = Path(folder)
    candidates = [folder / "last.ckpt"] if (folder / "last.ckpt").exists() else []
    candidates += sorted((p for p in folder.glob("*.ckpt") if p.name != "last.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True)
    skipped = []
    for path in candidates:
        why = loadable(path)
        if why is None:
            return path, skipped
        skipped.append(f"skipped {path.name}: {why}")
    return None, skipped


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


ARCH_KEYS = ("data.name", "data.image_size", "data.channels", "data.num_classes", "model._target_",
             "model.generator._target_", "model.generator.latent_dim", "model.generator.ngf", "model.generator.widths",
             "model.discriminator.ndf", "model.encoder._target_")


def load_weights(model: L.LightningModule, ckpt_path: str | Path, map_location: str = "cpu",
                 config: DictConfig | None = None) -> None:
    """Load a (possibly pruned) checkpoint's state into `model`, its masks re-created first. A checkpoint of
    another architecture is explained from the two configs (`config`: this run's), not by tensor shapes."""
    checkpoint = _load(ckpt_path, map_location)
    try:
        load_state(model, checkpoint["state_dict"])
    except RuntimeError as err:
        if config is None or KEY not in checkpoint:
            raise
        stored = OmegaConf.create(checkpoint[KEY]["config"])
        lines = [f"  {k}: checkpoint {OmegaConf.select(stored, k)!r}, this run {OmegaConf.select(config, k)!r}"
                 for k in ARCH_KEYS if OmegaConf.select(stored, k) != OmegaConf.select(config, k)]
        first = str(err).strip().splitlines()
        raise ValueError(
            f"{ckpt_path} holds another architecture than this run builds"
            + (":\n" + "\n".join(lines) if lines else f" ({first[1].strip() if len(first) > 1 else first[0]})")
            + "\nUse the checkpoint's settings (or another checkpoint) for init_ckpt / ckpt_path."
        ) from None


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
