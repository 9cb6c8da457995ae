"""Shared fixtures: the real Hydra config, composed once per test with tiny sizes."""

import os
import signal
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from prunegen import CONFIG_DIR

torch.set_num_threads(1)  # tiny models: one thread avoids OpenMP contention on a shared 2-core machine

TINY = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.enable_progress_bar=false",
    "logger=none",
    "model.generator.ngf=8",
    "model.discriminator.ndf=8",
    "model.generator.latent_dim=16",
    "data.image_size=16",
    "data.batch_size=16",
    "metrics.num_samples=64",
    "metrics.batch_size=64",
]


@pytest.fixture
def make_cfg(tmp_path: Path):
    """`make_cfg(*overrides)` -> the composed train config with tiny sizes, writing under tmp_path."""

    def _make(*overrides: str, tiny: bool = True) -> DictConfig:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose("train", overrides=[*(TINY if tiny else []), *overrides])
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / "run")
            cfg.paths.cache_dir = str(tmp_path.parent / "prunegen-cache")  # shared by the tests of a session
        return cfg

    return _make


class Interrupt(L.Callback):
    """Sends this process `signum` at the start of `epoch` (after the checkpoint of the epoch before), as a
    scheduler's SIGTERM or a user's Ctrl-C would."""

    def __init__(self, epoch: int, signum: int) -> None:
        self.epoch, self.signum = epoch, signum

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            os.kill(os.getpid(), self.signum)


@pytest.fixture
def interrupt_at(monkeypatch):
    """`interrupt_at(epoch, signum)`: the next `train()` is sent `signum` at the start of `epoch`."""
    import prunegen.train as entry

    def _arm(epoch: int, signum: int = signal.SIGTERM) -> None:
        original = entry.build_callbacks

        def once(cfg):
            monkeypatch.setattr(entry, "build_callbacks", original)
            callbacks, named = original(cfg)
            return [*callbacks, Interrupt(epoch, signum)], named

        monkeypatch.setattr(entry, "build_callbacks", once)

    return _arm
