"""PruningCallback: score the target layers and update their masks at epoch boundaries."""

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info
from torch import nn

from prunegen.pruning import structured as st
from prunegen.pruning.criteria import CRITERIA, NEEDS_GRADIENTS
from prunegen.pruning.masks import effective_weight, get_mask, prunable_layers, set_mask
from prunegen.pruning.rewind import Rewinder
from prunegen.pruning.schedules import Schedule
from prunegen.pruning.unstructured import global_masks, layer_masks

GRANULARITIES = ("unstructured", "structured")
SCOPES = ("layer", "global")


class PruningCallback(Callback):
    """Prunes `targets` (module paths of the LightningModule) on a sparsity schedule.

    unstructured: conv/linear weights (never biases or BatchNorm), sparsity counted in weights.
    structured: channel groups of the generator (out-channels + BatchNorm + next in-channels), masked
    as a whole; sparsity counted in channels. Masks are module buffers, so checkpoints carry them.
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
        round_to: int = 1,
        rewind: str | None = None,
    ) -> None:
        for key, value, allowed in [
            ("criterion", criterion, tuple(CRITERIA)),
            ("granularity", granularity, GRANULARITIES),
            ("scope", scope, SCOPES),
        ]:
            if value not in allowed:
                raise ValueError(f"pruning.{key} must be one of {allowed}, got {value!r}")
        if criterion == "bn_scale" and granularity != "structured":
            raise ValueError("pruning.criterion=bn_scale scores channels: it needs pruning.granularity=structured")
        if not 0 <= min_keep < 1:
            raise ValueError(f"pruning.min_keep must be in [0, 1), got {min_keep}")
        if isinstance(targets, str) or not targets:
            raise ValueError(f"pruning.targets must be a non-empty list of module paths, got {targets!r}")
        if round_to < 1:
            raise ValueError(f"pruning.round_to must be >= 1, got {round_to}")
        self.targets, self.ignore = list(targets), list(ignore)
        self.criterion, self.granularity, self.scope = criterion, granularity, scope
        self.min_keep, self.round_to = min_keep, round_to
        self.schedule = Schedule(final_sparsity, start_epoch, end_epoch, ramp, every_n_epochs)
        self.rewinder = Rewinder(rewind) if rewind else None
        self.applied = 0.0  # target sparsity of the last round
        self.layer_report: list[dict[str, Any]] = []
        self._groups: dict[str, list[st.ChannelGroup]] = {}
        self._stats: dict[str, dict[str, torch.Tensor]] = {}
        self._hooks: list = []

    @property
    def state_key(self) -> str:
        return self._generate_state_key(targets=self.targets, criterion=self.criterion, granularity=self.granularity)

    @property
    def method(self) -> str:
        return f"{self.granularity}_{self.scope}"

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for target in self.targets:
            try:
                module = pl_module.get_submodule(target)
            except AttributeError:
                children = [name for name, _ in pl_module.named_children()]
                raise ValueError(
                    f"pruning.targets: {target!r} is not a submodule of {type(pl_module).__name__}; "
                    f"top-level modules are {children}"
                ) from None
            if self.granularity == "structured":
                if not hasattr(module, "latent_dim"):
                    raise ValueError(f"pruning.granularity=structured needs generator-like targets, got {target!r}")
                ignore = [p.removeprefix(f"{target}.") for p in self.ignore if p.startswith(f"{target}.")]
                self._groups[target] = st.channel_groups(module, ignore)
        if not prunable_layers(pl_module, self.targets, self.ignore):
            raise ValueError(f"pruning.targets {self.targets} contain no conv or linear layer to prune")

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.rewinder is not None:
            self.rewinder.maybe_snapshot(pl_module, self.targets, epoch=0)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._remove_hooks()
        if self.criterion in NEEDS_GRADIENTS and self.schedule.is_round(trainer.current_epoch):
            self._install_hooks(pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        if self.rewinder is not None:
            self.rewinder.maybe_snapshot(pl_module, self.targets, epoch=epoch + 1)
        target = self.schedule(epoch)
        if self.schedule.is_round(epoch) and target > self.applied:
            for stats in self._stats.values():  # DDP: every rank scores the same summed statistics
                for key, value in stats.items():
                    stats[key] = trainer.strategy.reduce(value, reduce_op="sum")
            self._check_gradients(epoch)
            self.prune(pl_module, target, seed=epoch)
            if self.rewinder is not None:
                self.rewinder.rewind(pl_module, trainer.optimizers)
        self._remove_hooks()
        pl_module.log("prune/sparsity", self.sparsity(pl_module), on_epoch=True)
        for row in self.layer_report:  # per-layer sparsity beside the total, in every logger
            pl_module.log(f"prune/{row['layer']}", row["sparsity"], on_epoch=True)

    def _check_gradients(self, epoch: int) -> None:
        if self.criterion in NEEDS_GRADIENTS and not any(s["grad_sq"].any() for s in self._stats.values()):
            raise RuntimeError(
                f"pruning.criterion={self.criterion!r} needs the generator's gradients, but they were all zero over "
                f"epoch {epoch} (no loss reached its weights), so every score would be zero; nothing was pruned. "
                f"Prune at an epoch where the generator is trained, or use pruning.criterion=magnitude|bn_scale|random"
            )

    def prune(self, pl_module: L.LightningModule, sparsity: float, seed: int = 0) -> None:
        """One pruning round: every target layer (or all of them together) to `sparsity`."""
        if self.granularity == "structured":
            self._prune_channels(pl_module, sparsity, seed)
        else:
            self._prune_weights(pl_module, sparsity, seed)
        self.applied = sparsity
        self.layer_report = self.report(pl_module)
        lines = [f"  {r['layer']:<32} {r['nonzero']:>9,}/{r['weights']:<9,} sparsity {r['sparsity']:.3f}"
                 + (f"  channels {r['channels_kept']}/{r['channels']}" if "channels" in r else "") for r in self.layer_report]
        rank_zero_info(f"pruning round: target {sparsity:.3f} ({self.method}, {self.criterion})\n" + "\n".join(lines))

    def _score(self, module: nn.Module, path: str, name: str, seed: int) -> torch.Tensor:
        stats = {**self._stats.get(path, {}), "seed": seed * 7919 + sum(map(ord, f"{path}.{name}"))}
        return CRITERIA[self.criterion](module, name, stats)

    def _prune_weights(self, pl_module: L.LightningModule, sparsity: float, seed: int) -> None:
        layers = prunable_layers(pl_module, self.targets, self.ignore)
        scores = {p: self._score(m, p, "weight", seed) for p, m in layers.items()}
        masks = {p: get_mask(m) for p, m in layers.items()}
        if self.scope == "layer":
            new = layer_masks(scores, masks, sparsity)
        else:
            new = global_masks(scores, masks, sparsity, self.min_keep)
        with torch.no_grad():
            for path, layer in layers.items():
                set_mask(layer, "weight", new[path])

    def _prune_channels(self, pl_module: L.LightningModule, sparsity: float, seed: int) -> None:
        for target, groups in self._groups.items():
            gen = pl_module.get_submodule(target)
            per_param = {}
            for g in groups:
                for m in g.members:
                    module = gen.get_submodule(m.path)
                    is_bn = isinstance(module, nn.modules.batchnorm._BatchNorm)
                    if m.param == "weight" and is_bn == (self.criterion == "bn_scale"):
                        per_param[(m.path, m.param)] = self._score(module, f"{target}.{m.path}", "weight", seed)
            scores = {g.root: st.channel_scores(per_param, g) for g in groups}
            alive = {g.root: st.kept_channels(gen, g).cpu() for g in groups}
            keep = st.select_channels(scores, alive, sparsity, self.scope, self.min_keep, self.round_to)
            with torch.no_grad():
                for (path, name), mask in st.member_masks(gen, groups, keep).items():
                    set_mask(gen.get_submodule(path), name, mask)

    def report(self, pl_module: L.LightningModule) -> list[dict[str, Any]]:
        """Per-layer table: weights and nonzero; channels kept for structured groups."""
        rows = []
        for path, layer in prunable_layers(pl_module, self.targets, self.ignore).items():
            n, nz = get_mask(layer).numel(), int(get_mask(layer).sum())
            rows.append({"layer": path, "weights": n, "nonzero": nz, "sparsity": 1 - nz / n})
        for target, groups in self._groups.items():
            by_root = {f"{target}.{g.root}": g for g in groups}
            for row in rows:
                if row["layer"] in by_root:
                    g = by_root[row["layer"]]
                    row["channels"], row["channels_kept"] = g.size, int(st.kept_channels(pl_module.get_submodule(target), g).sum())
        return rows

    def sparsity(self, pl_module: L.LightningModule) -> float:
        """Achieved sparsity: fraction of pruned weights, or of removed channels when structured."""
        rows = self.report(pl_module)
        if self.granularity == "structured":
            rows = [r for r in rows if "channels" in r]
            return 1 - sum(r["channels_kept"] for r in rows) / sum(r["channels"] for r in rows)
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
        state = {"applied": self.applied, "layer_report": self.layer_report, "stats": self._stats}
        if self.rewinder is not None:
            state["rewind"] = self.rewinder.state_dict()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.applied = state_dict["applied"]
        self.layer_report = state_dict.get("layer_report", [])
        self._stats = state_dict.get("stats", {})
        if self.rewinder is not None and "rewind" in state_dict:
            self.rewinder.load_state_dict(state_dict["rewind"])
