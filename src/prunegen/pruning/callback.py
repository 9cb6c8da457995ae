"""PruningCallback: when to prune (Lightning hooks, schedule, rewinding); the engine decides what."""

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info
from torch import nn

from prunegen.choices import check_choice
from prunegen.pruning.compact import compact, generator_paths
from prunegen.pruning.criteria import Criterion, resolve
from prunegen.pruning.engine import PruningEngine, Strategy, mask_strategy
from prunegen.pruning.rewind import Rewinder
from prunegen.pruning.schedules import Schedule
from prunegen.pruning.stats import GradientStatistics
from prunegen.pruning.threshold import REFERENCES

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
    and `max_sparsity` caps it per layer. Scoring and masking are the `engine`'s; the gradient statistics
    (criteria that need them) are collected in `stats` over the epoch of a round.
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
            check_choice(f"pruning.{key}", value, allowed)
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
        strategy = mask_strategy(granularity, self.targets, self.ignore, scope, min_keep, round_to)
        self.engine = PruningEngine(self.importance, strategy, alpha, reference, max_sparsity)
        self.stats = GradientStatistics()
        self.schedule = Schedule(final_sparsity, start_epoch, end_epoch, ramp, every_n_epochs)
        self.rewinder = Rewinder(rewind) if rewind else None
        self.applied = 0.0  # sparsity after the last round (the target; the outcome when amount=threshold)
        self.layer_report: list[dict[str, Any]] = []
        self.rounds: list[dict[str, Any]] = []  # one row per round: epoch, target, achieved, threshold rows
        self.collected: dict[str, Any] = {}  # what a round's own gradient collection used (diff_pruning's timesteps)

    @property
    def state_key(self) -> str:
        return self._generate_state_key(targets=self.targets, criterion=self.criterion, granularity=self.granularity)

    @property
    def method(self) -> str:
        return f"{self.granularity}_{self.scope}"

    @property
    def strategy(self) -> Strategy:
        """The units pruned: `WeightMasks` or `ChannelMasks` (its `groups` once set up)."""
        return self.engine.strategy

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
        self.engine.setup(pl_module)
        last = getattr(self.schedule, "last_round_epoch", None)
        if last is not None and trainer is not None and trainer.max_epochs is not None and 0 < trainer.max_epochs <= last:
            raise ValueError(
                f"pruning: the last round is at the end of epoch {last} (pruning.start_epoch={self.schedule.start}, "
                f"pruning.end_epoch={self.schedule.end}), but trainer.max_epochs={trainer.max_epochs} stops after epoch "
                f"{trainer.max_epochs - 1}: set trainer.max_epochs >= {last + 1} or an earlier pruning.end_epoch"
            )
        if not self.engine.layers(pl_module):
            raise ValueError(f"pruning.targets {self.targets} contain no conv or linear layer to prune")

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.rewinder is not None:
            self.rewinder.maybe_snapshot(pl_module, self.targets, epoch=0)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.stats.remove()
        if self.engine.needs_gradients and self.schedule.is_round(trainer.current_epoch):
            self.stats.install(self.engine.layers(pl_module))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        if self.rewinder is not None:
            self.rewinder.maybe_snapshot(pl_module, self.targets, epoch=epoch + 1)
        if self._due(epoch):
            self.stats.reduce(lambda value: trainer.strategy.reduce(value, reduce_op="sum"))  # DDP: summed over ranks
            if "timestep_gradients" in self.importance.needs:
                self.collected = self._collect_timesteps(trainer, pl_module, epoch)
            if self.engine.needs_gradients or self.collected:
                self.stats.check_nonzero(self.criterion, epoch)
            if self.amount == "threshold":
                for row in self.prune_threshold(pl_module, seed=epoch, epoch=epoch):
                    pl_module.log(f"prune/threshold/{row['layer']}", row["threshold"], on_epoch=True)
            else:
                self.prune(pl_module, self.schedule(epoch), seed=epoch, epoch=epoch)
            if self.rewinder is not None:
                self.rewinder.rewind(pl_module, trainer.optimizers)
        self.stats.remove()
        pl_module.log("prune/sparsity", self.sparsity(pl_module), on_epoch=True)
        for row in self.layer_report:  # per-layer sparsity beside the total, in every logger
            pl_module.log(f"prune/{row['layer']}", row["sparsity"], on_epoch=True)

    def _collect_timesteps(self, trainer: L.Trainer, pl_module: L.LightningModule, epoch: int) -> dict[str, Any]:
        """Diff-Pruning's gradients over timesteps, on one batch of training images chosen by the epoch."""
        from prunegen.pruning import diff_pruning

        loader = trainer.train_dataloader
        size = self.importance.batch_size or getattr(loader, "batch_size", None) or 64
        images = diff_pruning.training_batch(loader.dataset, size, seed=epoch).to(pl_module.device)
        info = diff_pruning.collect(pl_module, images, self.stats, self.engine.layers(pl_module), self.importance.threshold, seed=epoch)
        stop = (f"stopped at loss {info['stop_loss']:.4g} < {info['timestep_threshold']} x max {info['max_loss']:.4g}"
                if info["stopped"] else f"the loss never fell below {info['timestep_threshold']} x its max")
        rank_zero_info(f"diff_pruning: gradients summed over timesteps 0..{info['timesteps'] - 1} on {size} training images ({stop})")
        return info

    def _due(self, epoch: int) -> bool:
        if not self.schedule.is_round(epoch):
            return False
        if self.amount == "threshold":  # every round prunes again; a resumed run never repeats one
            return not self.rounds or self.rounds[-1]["epoch"] < epoch
        return self.schedule(epoch) > self.applied

    def prune(self, pl_module: L.LightningModule, sparsity: float, seed: int = 0, epoch: int | None = None) -> None:
        """One round to a target: every target layer (or all of them together) to `sparsity`."""
        info = self.engine.prune_to(pl_module, sparsity, self.stats, seed)
        self.applied = sparsity
        self._finish_round(pl_module, epoch, info, f"target {sparsity:.3f}")

    def prune_threshold(self, pl_module: L.LightningModule, seed: int = 0, epoch: int | None = None) -> list[dict[str, Any]]:
        """One threshold round: mask the alive units scoring below alpha x reference; returns per-layer rows."""
        info = self.engine.prune_threshold(pl_module, self.stats, seed)
        self.applied = self.sparsity(pl_module)
        for row in info["layers"]:
            if row["capped"]:
                rank_zero_info(f"pruning.max_sparsity={self.max_sparsity} binds on {row['layer']}: the threshold "
                               f"{row['threshold']:.4g} would mask more; {row['masked']}/{row['units']} masked")
        self._finish_round(pl_module, epoch, info, f"threshold {self.alpha} x {self.reference}")
        return info["layers"]

    def _finish_round(self, pl_module: L.LightningModule, epoch: int | None, info: dict[str, Any], what: str) -> None:
        self.layer_report = self.report(pl_module)
        self.rounds.append({"epoch": epoch, **info, **self.collected, "achieved_sparsity": self.sparsity(pl_module)})
        self.collected = {}
        lines = [f"  {r['layer']:<32} {r['nonzero']:>9,}/{r['weights']:<9,} sparsity {r['sparsity']:.3f}"
                 + (f"  channels {r['channels_kept']}/{r['channels']}" if "channels" in r else "") for r in self.layer_report]
        rank_zero_info(f"pruning round: {what} ({self.method}, {self.criterion}): sparsity "
                       f"{self.rounds[-1]['achieved_sparsity']:.3f}\n" + "\n".join(lines))

    def report(self, pl_module: L.LightningModule) -> list[dict[str, Any]]:
        """Per-layer table: weights and nonzero; channels kept for structured groups."""
        return self.engine.report(pl_module)

    def sparsity(self, pl_module: L.LightningModule) -> float:
        """Achieved sparsity: fraction of pruned weights, or of removed channels when structured."""
        return self.engine.sparsity(pl_module)

    def compact(self, generator: nn.Module) -> nn.Module:
        """The generator with its masked channel groups removed (a copy); unstructured masks remove nothing,
        so the generator itself is returned."""
        if self.granularity != "structured":
            return generator
        return compact(generator, generator_paths(self.ignore))

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

    def state_dict(self) -> dict[str, Any]:
        state = {"applied": self.applied, "layer_report": self.layer_report, "rounds": self.rounds,
                 "stats": self.stats.state_dict()}
        if self.rewinder is not None:
            state["rewind"] = self.rewinder.state_dict()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.applied = state_dict["applied"]
        self.layer_report = state_dict.get("layer_report", [])
        self.rounds = state_dict.get("rounds", [])
        self.stats.load_state_dict(state_dict.get("stats", {}))
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
