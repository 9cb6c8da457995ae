"""PruningCallback: score the target layers and update their masks at epoch boundaries."""

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info
from torch import nn

from prunegen.pruning.criteria import Criterion, resolve
from prunegen.pruning.masks import effective_weight, prunable_layers, trainable
from prunegen.pruning.rewind import Rewinder
from prunegen.pruning.schedules import Schedule
from prunegen.pruning.structured import ChannelMasks
from prunegen.pruning.threshold import REFERENCES, references, threshold_keep
from prunegen.pruning.unstructured import WeightMasks

GRANULARITIES = ("unstructured", "structured")
SCOPES = ("layer", "global")
AMOUNTS = ("sparsity", "threshold")


class PruningCallback(Callback):
    """Prunes `targets` (module paths of the LightningModule) at the rounds of a schedule.

    unstructured: conv/linear weights (never biases or BatchNorm), sparsity counted in weights.
    structured: channel groups of the generator (out-channels + BatchNorm + next in-channels), masked
    as a whole; sparsity counted in channels. Masks are module buffers, so checkpoints carry them.
    amount=sparsity: every round reaches the schedule's target sparsity. amount=threshold: every round
    masks the units scoring below `alpha` x `reference` (see `threshold.py`); the sparsity is the outcome,
    and `max_sparsity` caps it per layer.
    """

    def __init__(
        self,
        targets: list[str] = ("generator",),
        criterion: str | Criterion = "magnitude",
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
        amount: str = "sparsity",
        alpha: float = 1.0,
        reference: str = "mean",
        max_sparsity: float | None = None,
    ) -> None:
        self.importance = resolve(criterion)
        self.criterion = self.importance.name
        for key, value, allowed in [("granularity", granularity, GRANULARITIES), ("scope", scope, SCOPES),
                                    ("amount", amount, AMOUNTS), ("reference", reference, REFERENCES)]:
            if value not in allowed:
                raise ValueError(f"pruning.{key} must be one of {allowed}, got {value!r}")
        if "bn_scales" in self.importance.needs and granularity != "structured":
            raise ValueError(f"pruning.criterion={self.criterion} scores channels: it needs pruning.granularity=structured")
        _check_threshold(amount, alpha, reference, max_sparsity, self.criterion, granularity, scope)
        if not 0 <= min_keep < 1:
            raise ValueError(f"pruning.min_keep must be in [0, 1), got {min_keep}")
        if isinstance(targets, str) or not targets:
            raise ValueError(f"pruning.targets must be a non-empty list of module paths, got {targets!r}")
        if round_to < 1:
            raise ValueError(f"pruning.round_to must be >= 1, got {round_to}")
        self.targets, self.ignore = list(targets), list(ignore)
        self.granularity, self.scope = granularity, scope
        self.amount, self.alpha, self.reference, self.max_sparsity = amount, alpha, reference, max_sparsity
        self.strategy = (ChannelMasks(self.targets, self.ignore, scope, min_keep, round_to) if granularity == "structured"
                         else WeightMasks(self.targets, self.ignore, scope, min_keep))
        self.schedule = Schedule(final_sparsity, start_epoch, end_epoch, ramp, every_n_epochs)
        self.rewinder = Rewinder(rewind) if rewind else None
        self.applied = 0.0  # sparsity after the last round (the target; the outcome when amount=threshold)
        self.layer_report: list[dict[str, Any]] = []
        self.rounds: list[dict[str, Any]] = []  # one row per round: epoch, target, achieved, threshold rows
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
                pl_module.get_submodule(target)
            except AttributeError:
                children = [name for name, _ in pl_module.named_children()]
                raise ValueError(
                    f"pruning.targets: {target!r} is not a submodule of {type(pl_module).__name__}; "
                    f"top-level modules are {children}"
                ) from None
        self.strategy.setup(pl_module)
        last = getattr(self.schedule, "last_round_epoch", None)
        if last is not None and trainer is not None and trainer.max_epochs is not None and 0 < trainer.max_epochs <= last:
            raise ValueError(
                f"pruning: the last round is at the end of epoch {last} (pruning.start_epoch={self.schedule.start}, "
                f"pruning.end_epoch={self.schedule.end}), but trainer.max_epochs={trainer.max_epochs} stops after epoch "
                f"{trainer.max_epochs - 1}: set trainer.max_epochs >= {last + 1} or an earlier pruning.end_epoch"
            )
        if not prunable_layers(pl_module, self.targets, self.ignore):
            raise ValueError(f"pruning.targets {self.targets} contain no conv or linear layer to prune")

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.rewinder is not None:
            self.rewinder.maybe_snapshot(pl_module, self.targets, epoch=0)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._remove_hooks()
        if "gradients" in self.importance.needs and self.schedule.is_round(trainer.current_epoch):
            self._install_hooks(pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        if self.rewinder is not None:
            self.rewinder.maybe_snapshot(pl_module, self.targets, epoch=epoch + 1)
        if self._due(epoch):
            for stats in self._stats.values():  # DDP: every rank scores the same summed statistics
                for key, value in stats.items():
                    stats[key] = trainer.strategy.reduce(value, reduce_op="sum")
            self._check_gradients(epoch)
            if self.amount == "threshold":
                for row in self.prune_threshold(pl_module, seed=epoch, epoch=epoch):
                    pl_module.log(f"prune/threshold/{row['layer']}", row["threshold"], on_epoch=True)
            else:
                self.prune(pl_module, self.schedule(epoch), seed=epoch, epoch=epoch)
            if self.rewinder is not None:
                self.rewinder.rewind(pl_module, trainer.optimizers)
        self._remove_hooks()
        pl_module.log("prune/sparsity", self.sparsity(pl_module), on_epoch=True)
        for row in self.layer_report:  # per-layer sparsity beside the total, in every logger
            pl_module.log(f"prune/{row['layer']}", row["sparsity"], on_epoch=True)

    def _due(self, epoch: int) -> bool:
        if not self.schedule.is_round(epoch):
            return False
        if self.amount == "threshold":  # every round prunes again; a resumed run never repeats one
            return not self.rounds or self.rounds[-1]["epoch"] < epoch
        return self.schedule(epoch) > self.applied

    def _check_gradients(self, epoch: int) -> None:
        if "gradients" in self.importance.needs and not any(s["grad_sq"].any() for s in self._stats.values()):
            raise RuntimeError(
                f"pruning.criterion={self.criterion!r} needs the generator's gradients, but they were all zero over "
                f"epoch {epoch} (no loss reached its weights), so every score would be zero; nothing was pruned. "
                f"Prune at an epoch where the generator is trained, or use pruning.criterion=magnitude|bn_scale|random"
            )

    def _scores(self, pl_module: L.LightningModule, seed: int) -> tuple[dict, dict]:
        def score(module: nn.Module, path: str, name: str) -> torch.Tensor:
            stats = {**self._stats.get(path, {}), "seed": seed * 7919 + sum(map(ord, f"{path}.{name}"))}
            return self.importance(module, name, stats)

        if isinstance(self.strategy, ChannelMasks):
            return self.strategy.scores(pl_module, score, bn="bn_scales" in self.importance.needs)
        return self.strategy.scores(pl_module, score)

    def prune(self, pl_module: L.LightningModule, sparsity: float, seed: int = 0, epoch: int | None = None) -> None:
        """One round to a target: every target layer (or all of them together) to `sparsity`."""
        scores, alive = self._scores(pl_module, seed)
        self.strategy.apply(pl_module, self.strategy.select(scores, alive, sparsity))
        self.applied = sparsity
        self._finish_round(pl_module, epoch, {"target": sparsity}, f"target {sparsity:.3f}")

    def prune_threshold(self, pl_module: L.LightningModule, seed: int = 0, epoch: int | None = None) -> list[dict[str, Any]]:
        """One threshold round: mask the alive units scoring below alpha x reference; returns per-layer rows."""
        scores, alive = self._scores(pl_module, seed)
        weights = self.strategy.weights(pl_module) if self.reference == "std" else None
        refs = references(scores, alive, self.reference, self.scope, weights)
        min_units = 1 if self.granularity == "structured" else 0  # a group keeps a channel: compact needs one
        keep, rows = threshold_keep(scores, alive, self.alpha, refs, self.max_sparsity, min_units)
        self.strategy.apply(pl_module, keep)
        self.applied = self.sparsity(pl_module)
        for row in rows:
            if row["capped"]:
                rank_zero_info(f"pruning.max_sparsity={self.max_sparsity} binds on {row['layer']}: the threshold "
                               f"{row['threshold']:.4g} would mask more; {row['masked']}/{row['units']} masked")
        info = {"target": None, "alpha": self.alpha, "reference": self.reference, "layers": rows}
        self._finish_round(pl_module, epoch, info, f"threshold {self.alpha} x {self.reference}")
        return rows

    def _finish_round(self, pl_module: L.LightningModule, epoch: int | None, info: dict[str, Any], what: str) -> None:
        self.layer_report = self.report(pl_module)
        self.rounds.append({"epoch": epoch, **info, "achieved_sparsity": self.sparsity(pl_module)})
        lines = [f"  {r['layer']:<32} {r['nonzero']:>9,}/{r['weights']:<9,} sparsity {r['sparsity']:.3f}"
                 + (f"  channels {r['channels_kept']}/{r['channels']}" if "channels" in r else "") for r in self.layer_report]
        rank_zero_info(f"pruning round: {what} ({self.method}, {self.criterion}): sparsity "
                       f"{self.rounds[-1]['achieved_sparsity']:.3f}\n" + "\n".join(lines))

    def report(self, pl_module: L.LightningModule) -> list[dict[str, Any]]:
        """Per-layer table: weights and nonzero; channels kept for structured groups."""
        return self.strategy.report(pl_module)

    def sparsity(self, pl_module: L.LightningModule) -> float:
        """Achieved sparsity: fraction of pruned weights, or of removed channels when structured."""
        return self.strategy.sparsity(pl_module)

    def record(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        """This callback's part of metrics.json. Masks change only in a round, so after one the record comes from
        the state (what a ddp_spawn parent has: the channel groups were found in the workers)."""
        achieved = self.rounds[-1]["achieved_sparsity"] if self.rounds else self.sparsity(pl_module)
        out = {"method": self.method, "criterion": self.criterion, "granularity": self.granularity, "amount": self.amount,
               "target_sparsity": self.schedule.final if self.amount == "sparsity" else None, "scope": self.scope,
               "ignore": list(self.ignore), "achieved_sparsity": achieved,
               "layers": self.layer_report if self.rounds else self.report(pl_module), "rounds": self.rounds}
        if self.amount == "threshold":
            out.update(alpha=self.alpha, reference=self.reference, max_sparsity=self.max_sparsity)
        return {"pruning": out}

    def _install_hooks(self, pl_module: L.LightningModule) -> None:
        self._stats = {}
        for path, layer in prunable_layers(pl_module, self.targets, self.ignore).items():
            param = trainable(layer)
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
        state = {"applied": self.applied, "layer_report": self.layer_report, "rounds": self.rounds, "stats": self._stats}
        if self.rewinder is not None:
            state["rewind"] = self.rewinder.state_dict()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.applied = state_dict["applied"]
        self.layer_report = state_dict.get("layer_report", [])
        self.rounds = state_dict.get("rounds", [])
        self._stats = state_dict.get("stats", {})
        if self.rewinder is not None and "rewind" in state_dict:
            self.rewinder.load_state_dict(state_dict["rewind"])


def _check_threshold(amount: str, alpha: float, reference: str, max_sparsity: float | None,
                     criterion: str, granularity: str, scope: str) -> None:
    """Validate the threshold settings (before training), naming the key."""
    if amount != "threshold":
        return
    if not alpha > 0:
        raise ValueError(f"pruning.alpha must be > 0 (the threshold is alpha x the reference), got {alpha}")
    if max_sparsity is not None and not 0 < max_sparsity <= 1:
        raise ValueError(f"pruning.max_sparsity must be in (0, 1] or null, got {max_sparsity}")
    if reference == "std" and (criterion, granularity, scope) != ("magnitude", "unstructured", "layer"):
        raise ValueError(
            "pruning.reference=std is Han et al.'s rule |w| < alpha x std(W) per layer: it needs "
            f"pruning.criterion=magnitude, granularity=unstructured, scope=layer (got {criterion}, {granularity}, "
            f"{scope}); use pruning.reference=mean for the others")
