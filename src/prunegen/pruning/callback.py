"""PruningCallback: score the target layers and update their masks at epoch boundaries."""

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from prunegen.pruning.criteria import CRITERIA, NEEDS_GRADIENTS
from prunegen.pruning.masks import count_parameters, effective_weight, get_mask, prunable_layers, set_mask
from prunegen.pruning.schedules import Schedule
from prunegen.pruning.unstructured import global_masks, layer_masks

GRANULARITIES = ("unstructured",)
SCOPES = ("layer", "global")


class PruningCallback(Callback):
    """Prunes the weights of `targets` (module paths of the LightningModule) on a sparsity schedule.

    Only conv/linear weights are pruned (never biases or BatchNorm). Masks are module buffers, so
    checkpoints carry them; the schedule position goes through `state_dict`.
    """

    def __init__(
        self,
        targets: list[str] = ("generator",),
        criterion: str = "magnitude",
        granularity: str = "unstructured",
        scope: str = "layer",
        final_sparsity: float = 0.5,
        start_epoch: int = 0,
        end_epoch: int = 0,
        ramp: str = "linear",
        every_n_epochs: int = 1,
        min_keep: float = 0.0,
        ignore: list[str] = (),
    ) -> None:
        for key, value, allowed in [
            ("criterion", criterion, tuple(CRITERIA)),
            ("granularity", granularity, GRANULARITIES),
            ("scope", scope, SCOPES),
        ]:
            if value not in allowed:
                raise ValueError(f"pruning.{key} must be one of {allowed}, got {value!r}")
        if not 0 <= min_keep < 1:
            raise ValueError(f"pruning.min_keep must be in [0, 1), got {min_keep}")
        if isinstance(targets, str) or not targets:
            raise ValueError(f"pruning.targets must be a non-empty list of module paths, got {targets!r}")
        self.targets, self.ignore = list(targets), list(ignore)
        self.criterion, self.granularity, self.scope, self.min_keep = criterion, granularity, scope, min_keep
        self.schedule = Schedule(final_sparsity, start_epoch, end_epoch, ramp, every_n_epochs)
        self.applied = 0.0  # sparsity of the last round
        self.layer_report: list[dict[str, Any]] = []
        self._stats: dict[str, dict[str, torch.Tensor]] = {}
        self._hooks: list = []

    @property
    def state_key(self) -> str:
        return self._generate_state_key(targets=self.targets, criterion=self.criterion, scope=self.scope)

    @property
    def method(self) -> str:
        return f"{self.granularity}_{self.scope}"

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for target in self.targets:
            try:
                pl_module.get_submodule(target)
            except AttributeError:
                children = [name for name, _ in pl_module.named_children()]
                raise ValueError(
                    f"pruning.targets: {target!r} is not a submodule of {type(pl_module).__name__}; "
                    f"top-level modules are {children}"
                ) from None
        if not prunable_layers(pl_module, self.targets, self.ignore):
            raise ValueError(f"pruning.targets {self.targets} contain no conv or linear layer to prune")

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._remove_hooks()
        if self.criterion in NEEDS_GRADIENTS and self.schedule.is_round(trainer.current_epoch):
            self._install_hooks(pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        target = self.schedule(epoch)
        if self.schedule.is_round(epoch) and target > self.applied:
            self.prune(pl_module, target, seed=epoch)
        self._remove_hooks()
        pl_module.log("prune/sparsity", self.sparsity(pl_module), on_epoch=True)

    def prune(self, pl_module: L.LightningModule, sparsity: float, seed: int = 0) -> None:
        """One pruning round: every target layer (or all of them together) to `sparsity`."""
        layers = prunable_layers(pl_module, self.targets, self.ignore)
        criterion = CRITERIA[self.criterion]
        scores = {p: criterion(m, "weight", {**self._stats.get(p, {}), "seed": seed * 7919 + i}) for i, (p, m) in enumerate(layers.items())}
        masks = {p: get_mask(m) for p, m in layers.items()}
        if self.scope == "layer":
            new = layer_masks(scores, masks, sparsity)
        else:
            new = global_masks(scores, masks, sparsity, self.min_keep)
        with torch.no_grad():
            for path, layer in layers.items():
                set_mask(layer, "weight", new[path])
        self.applied = sparsity
        self.layer_report = self.report(pl_module)

    def report(self, pl_module: L.LightningModule) -> list[dict[str, Any]]:
        """Per-layer table: weights, nonzero, sparsity."""
        rows = []
        for path, layer in prunable_layers(pl_module, self.targets, self.ignore).items():
            n, nz = get_mask(layer).numel(), int(get_mask(layer).sum())
            rows.append({"layer": path, "weights": n, "nonzero": nz, "sparsity": 1 - nz / n})
        return rows

    def sparsity(self, pl_module: L.LightningModule) -> float:
        """Achieved fraction of pruned weights over all target layers."""
        rows = self.report(pl_module)
        return 1 - sum(r["nonzero"] for r in rows) / sum(r["weights"] for r in rows)

    def _install_hooks(self, pl_module: L.LightningModule) -> None:
        self._stats = {}
        for path, layer in prunable_layers(pl_module, self.targets, self.ignore).items():
            param = layer.weight_orig if hasattr(layer, "weight_orig") else layer.weight
            stats = self._stats[path] = {"grad_sq": torch.zeros_like(param), "grad_w": torch.zeros_like(param)}

            def hook(grad: torch.Tensor, layer=layer, stats=stats) -> None:
                stats["grad_sq"] += grad.detach() ** 2
                stats["grad_w"] += effective_weight(layer).detach() * grad.detach()

            self._hooks.append(param.register_hook(hook))

    def _remove_hooks(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []

    def state_dict(self) -> dict[str, Any]:
        return {"applied": self.applied, "layer_report": self.layer_report, "stats": self._stats}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.applied = state_dict["applied"]
        self.layer_report = state_dict.get("layer_report", [])
        self._stats = state_dict.get("stats", {})
