"""Lottery-ticket rewinding (Frankle & Carbin 2019; GAN-LTH, Chen et al. 2021)."""

import re
from typing import Any

import lightning as L
import torch

from prunegen.masks import is_mask_key, param_key


class Rewinder:
    """Snapshots the targets' weights at `init` or after epoch k; after each round resets survivors to them."""

    def __init__(self, rewind: str) -> None:
        match = re.fullmatch(r"init|epoch_(\d+)", rewind)
        if match is None:
            raise ValueError(f"pruning.rewind must be null, 'init' or 'epoch_<k>', got {rewind!r}")
        self.epoch = int(match.group(1) or 0)
        self.weights: dict[str, torch.Tensor] | None = None

    def maybe_snapshot(self, pl_module: L.LightningModule, targets: list[str], epoch: int) -> None:
        """Take the snapshot once, when `epoch` epochs have been trained (0 = init)."""
        if self.weights is None and epoch == self.epoch:
            self.weights = {
                param_key(f"{t}.{k}"): v.detach().clone()
                for t in targets
                for k, v in pl_module.get_submodule(t).state_dict().items()
                if not is_mask_key(k)
            }

    def rewind(self, pl_module: L.LightningModule, optimizers: list[torch.optim.Optimizer]) -> None:
        """Surviving weights (masks stay) and BatchNorm statistics back to the snapshot; optimizer state reset."""
        if self.weights is None:
            raise RuntimeError(f"pruning.rewind=epoch_{self.epoch}: a round came before the snapshot epoch")
        state = pl_module.state_dict(keep_vars=True)
        rewound = set()
        with torch.no_grad():
            for key, tensor in state.items():
                canonical = param_key(key)
                if canonical in self.weights and not is_mask_key(key):
                    tensor.copy_(self.weights[canonical])
                    rewound.add(id(tensor))
        for opt in optimizers:
            for group in opt.param_groups:
                for p in group["params"]:
                    if id(p) in rewound:
                        opt.state.pop(p, None)

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.weights}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.weights = state["weights"]
