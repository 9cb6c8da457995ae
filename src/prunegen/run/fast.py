"""Speed settings of a training run that are not Lightning Trainer arguments: channels-last memory and an
opt-in `torch.compile` of the networks. `trainer=gpu` turns channels-last on (with `precision=bf16-mixed`);
`trainer.fast.compile=true` adds compilation.

Both keep the math: channels-last changes only the layout of weights and activations; compilation wraps
each network's forward (`module.compile()`, in place), so module paths, state-dict keys, masks and
checkpoints are those of the uncompiled run.
"""

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn

NETWORKS = ("generator", "discriminator", "encoder", "decoder", "ema")


class FastTraining(Callback):
    """Puts the model's networks in channels-last memory format at setup and, when `compile` is set,
    compiles each of them (`nn.Module.compile`, with `compile_kwargs`)."""

    def __init__(self, channels_last: bool = True, compile: bool = False, compile_kwargs: dict[str, Any] | None = None,
                 networks: list[str] = NETWORKS) -> None:
        self.channels_last, self.compile = channels_last, compile
        self.compile_kwargs, self.networks = dict(compile_kwargs or {}), list(networks)

    def _modules(self, pl_module: L.LightningModule) -> list[nn.Module]:
        return [m for name in self.networks if isinstance(m := getattr(pl_module, name, None), nn.Module)]

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Before the optimizers and a DDP wrapper are built (parameters keep their identity either way: the
        layout change swaps `.data`); after the pruning callback's setup, which traces the plain networks."""
        for module in self._modules(pl_module):
            if self.channels_last:
                module.to(memory_format=torch.channels_last)
            if self.compile:
                module.compile(**self.compile_kwargs)

