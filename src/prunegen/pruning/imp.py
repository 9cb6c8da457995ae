"""Iterative magnitude pruning with full rounds (GAN-LTH, Chen et al. 2021) and the paper's two controls."""

import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only, rank_zero_warn

from prunegen.choices import check_choice
from prunegen.masks import get_mask, prunable_layers, set_mask
from prunegen.metrics.callback import EvaluationCallback
from prunegen.pruning.callback import PruningCallback
from prunegen.pruning.reinit import INITS, init_weights
from prunegen.pruning.rewind import Rewinder
from prunegen.pruning.schedules import Geometric

NEVER = 255  # `pruned_at` of a weight that survives every round
SCORE_KEYS = ("fid", "kid_mean", "is_mean", "class_coverage")


class IterativeMagnitudePruning(PruningCallback):
    """Round r trains `epochs_per_round` epochs at sparsity 1 - (1 - rate)^r (round 0 dense). At its end the
    model is scored (the ticket of that sparsity) and recorded; then, except after the last round, `rate`
    of the remaining weights are pruned, the targets' survivors rewound (`rewind`), the `reset` modules put
    back to their weights at the same point (init: their initial weights), the EMA set to the rewound
    generator and every optimizer's state cleared.

    Controls: `criterion=random` prunes at random to the same sparsities; `ticket_masks=PATH` (the
    `save_masks` file of an IMP run) trains that run's mask of every round on re-initialised weights
    (random tickets). `init` re-initialises G and the `reset` modules before training (GAN-LTH: xavier_uniform).
    `start_round=k` (controls only) starts at round k with its masks: every round trains from the same initial
    weights, so a control's round depends only on its mask, and random masks at the sparsity of round k are
    what k rounds of random pruning give.
    """

    def __init__(
        self,
        targets: list[str] = ("generator",),
        criterion: str = "magnitude",
        rounds: int = 11,
        epochs_per_round: int = 1,
        rate: float = 0.2,
        scope: str = "global",
        min_keep: float = 0.0,
        ignore: list[str] = (),
        rewind: str = "init",
        reset: list[str] = ("discriminator",),
        init: str | None = None,
        score_every_n_epochs: int | None = None,
        save_masks: str | None = None,
        ticket_masks: str | None = None,
        ticket_seed: int = 1,
        start_round: int = 0,
    ) -> None:
        schedule = Geometric(rate, rounds, epochs_per_round, start_round)
        if not rewind:
            raise ValueError("pruning.rewind must be 'init' or 'epoch_<k>' for iterative magnitude pruning, got null")
        super().__init__(targets, criterion, "unstructured", scope, schedule.final, min_keep=min_keep, ignore=ignore, rewind=rewind)
        if init is not None:
            check_choice("pruning.init", init, INITS, extra="or null")
        if score_every_n_epochs is not None and score_every_n_epochs < 1:
            raise ValueError(f"pruning.score_every_n_epochs must be >= 1 or null, got {score_every_n_epochs}")
        if isinstance(reset, str):
            raise ValueError(f"pruning.reset must be a list of module paths, got {reset!r}")
        if start_round and criterion != "random" and not ticket_masks:
            raise ValueError("pruning.start_round > 0 is for the controls (criterion=random or ticket_masks): "
                             "IMP's masks of a round come from the rounds before it")
        if self.rewinder.epoch > epochs_per_round:
            raise ValueError(f"pruning.rewind={rewind} is after the first round (pruning.epochs_per_round={epochs_per_round})")
        self.schedule = schedule
        self.reset, self.init, self.score_every = list(reset), init, score_every_n_epochs
        self.save_masks, self.ticket_masks, self.ticket_seed = save_masks, ticket_masks, ticket_seed
        self.resetter = Rewinder(rewind) if reset else None
        self.round_rows: list[dict[str, Any]] = []  # one scored row per finished round (metrics.json's pruning.rounds)
        self.round_scores: list[dict[str, Any]] = []  # scores of the current round (score_every_n_epochs)
        self.pruned_at: dict[str, torch.Tensor] = {}  # per weight: first round it is masked in (NEVER: kept)
        self.started = False
        self._tickets: dict[str, torch.Tensor] | None = None

    @property
    def method(self) -> str:
        kind = "random_ticket" if self.ticket_masks else ("random_pruning" if self.criterion == "random" else "imp")
        return f"{kind}_{self.scope}"

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if trainer.max_epochs != self.schedule.max_epochs or (trainer.max_steps or -1) > 0:
            raise ValueError(
                f"trainer.max_epochs must equal (pruning.rounds - pruning.start_round) x pruning.epochs_per_round = "
                f"({self.schedule.rounds} - {self.schedule.start_round}) x {self.schedule.epochs_per_round} = "
                f"{self.schedule.max_epochs} (and trainer.max_steps unset), "
                f"got trainer.max_epochs={trainer.max_epochs}, trainer.max_steps={trainer.max_steps}"
            )
        for path in self.reset:
            try:
                pl_module.get_submodule(path)
            except AttributeError:
                raise ValueError(f"pruning.reset: {path!r} is not a submodule of {type(pl_module).__name__}") from None
        if self.ticket_masks is not None:
            self._tickets = load_tickets(self.ticket_masks, prunable_layers(pl_module, self.targets, self.ignore), self.schedule.rounds)
        if getattr(_evaluation(trainer), "every_n_epochs", None) is not None:
            rank_zero_warn("metrics.every_n_epochs is set: those scores come after a round's prune and rewind; "
                           "pruning.score_every_n_epochs scores inside rounds, before pruning")

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.started:  # a fresh run (a resumed one restored all of this from its checkpoint)
            if self.init is not None:
                for path in [*self.targets, *self.reset]:
                    init_weights(pl_module.get_submodule(path), self.init)
            if self.ticket_masks is not None:  # the random ticket's own initial weights
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(torch.initial_seed() + 7919 * self.ticket_seed)
                    for path in self.targets:
                        init_weights(pl_module.get_submodule(path), self.init or "default")
            if self.schedule.start_round:  # the controls' masks of their first round
                self._next_masks(trainer, pl_module, self.schedule.start_round)
            self.started = True
            pl_module.reset_ema()
        self.rewinder.maybe_snapshot(pl_module, self.targets, epoch=0)
        if self.resetter is not None:
            self.resetter.maybe_snapshot(pl_module, self.reset, epoch=0)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch, schedule = trainer.current_epoch, self.schedule
        self.rewinder.maybe_snapshot(pl_module, self.targets, epoch=epoch + 1)
        if self.resetter is not None:
            self.resetter.maybe_snapshot(pl_module, self.reset, epoch=epoch + 1)
        if schedule.ends_round(epoch) or (self.score_every and (epoch + 1) % self.score_every == 0):
            self.round_scores.append(self._score(trainer, pl_module))
        if schedule.ends_round(epoch):
            self.round_rows.append(self._round_row(pl_module, schedule.round_of(epoch), epoch))
            self.round_scores = []
            rank_zero_info(f"{self.method} round {self.round_rows[-1]}")
        if schedule.is_round(epoch):
            self._next_masks(trainer, pl_module, schedule.round_of(epoch) + 1)
            self.rewinder.rewind(pl_module, trainer.optimizers)
            if self.resetter is not None:
                self.resetter.rewind(pl_module, trainer.optimizers)
            pl_module.reset_ema()
            for opt in trainer.optimizers:
                opt.state.clear()
        pl_module.log("prune/sparsity", self.sparsity(pl_module), on_epoch=True)

    def _next_masks(self, trainer: L.Trainer, pl_module: L.LightningModule, round_: int) -> None:
        target = self.schedule.sparsity(round_)
        if self._tickets is None:
            self.prune(pl_module, target, seed=trainer.current_epoch, epoch=trainer.current_epoch)
        else:
            for path, layer in prunable_layers(pl_module, self.targets, self.ignore).items():
                set_mask(layer, "weight", (self._tickets[path] > round_).float())
            self.applied, self.layer_report = target, self.report(pl_module)
        for path, layer in prunable_layers(pl_module, self.targets, self.ignore).items():
            at = self.pruned_at.setdefault(path, torch.full(layer.weight.shape, NEVER, dtype=torch.uint8))
            at[(get_mask(layer).cpu() == 0) & (at == NEVER)] = round_
        if self.save_masks:
            write_tickets(self.save_masks, self.pruned_at, self.schedule)

    def _score(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        evaluation = _evaluation(trainer)
        if evaluation is None or evaluation.scorer is None:
            return {"epoch": trainer.current_epoch}
        scores = evaluation.scorer.score(pl_module, evaluation.num_samples, evaluation.batch_size, seed=evaluation.seed)
        return {"epoch": trainer.current_epoch, **{k: scores.get(k) for k in SCORE_KEYS}}

    def _round_row(self, pl_module: L.LightningModule, round_: int, epoch: int) -> dict[str, Any]:
        sparsity = self.sparsity(pl_module)
        last = self.round_scores[-1]
        fids = [s["fid"] for s in self.round_scores if s.get("fid") is not None]
        row = {"round": round_, "epoch": epoch, "sparsity": sparsity, "remaining": 1 - sparsity,
               "target_sparsity": self.schedule.sparsity(round_), **{k: last.get(k) for k in SCORE_KEYS}}
        row["fid_best"] = min(fids) if fids else None
        return row

    def record(self, trainer: L.Trainer | None = None, pl_module: L.LightningModule | None = None) -> dict[str, Any]:
        """This callback's part of metrics.json: the protocol and one row per round."""
        parent = getattr(super(), "record", None)
        out = parent(trainer, pl_module) if parent is not None else {"pruning": {}}
        part = out.setdefault("pruning", {})
        part["prunes"] = part.pop("rounds", [])  # the parent's one row per prune
        part.update(
            protocol=self.method.removesuffix(f"_{self.scope}"), rate=self.schedule.rate, rounds_planned=self.schedule.rounds,
            epochs_per_round=self.schedule.epochs_per_round, rewind=f"epoch_{self.rewinder.epoch}" if self.rewinder.epoch else "init",
            reset=self.reset, init=self.init, ticket_masks=self.ticket_masks, start_round=self.schedule.start_round,
            rounds=list(self.round_rows),
        )
        return out

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.update(round_rows=self.round_rows, round_scores=self.round_scores, pruned_at=self.pruned_at, started=self.started)
        if self.resetter is not None:
            state["reset"] = self.resetter.state_dict()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.round_rows, self.round_scores = list(state_dict["round_rows"]), list(state_dict["round_scores"])
        self.pruned_at, self.started = dict(state_dict["pruned_at"]), state_dict["started"]
        if self.resetter is not None and "reset" in state_dict:
            self.resetter.load_state_dict(state_dict["reset"])


def _evaluation(trainer: L.Trainer) -> Any:
    return next((c for c in trainer.callbacks if isinstance(c, EvaluationCallback)), None)


@rank_zero_only
def write_tickets(path: str, pruned_at: dict[str, torch.Tensor], schedule: Geometric) -> None:
    """`{"rounds", "rate", "pruned_at"}`: the mask of round r is `pruned_at > r` (written atomically)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = f"{path}.tmp"
    torch.save({"rounds": schedule.rounds, "rate": schedule.rate, "pruned_at": pruned_at}, tmp)
    os.replace(tmp, path)


def load_tickets(path: str, layers: dict[str, torch.nn.Module], rounds: int) -> dict[str, torch.Tensor]:
    """An IMP run's `save_masks` file, checked against this model's prunable layers and number of rounds."""
    if not Path(path).is_file():
        raise ValueError(f"pruning.ticket_masks: no file {path} (run the IMP experiment first: it writes pruning.save_masks)")
    saved = torch.load(path, weights_only=True)
    pruned_at = saved["pruned_at"]
    shapes = {p: tuple(m.weight.shape) for p, m in layers.items()}
    if {p: tuple(t.shape) for p, t in pruned_at.items()} != shapes or saved["rounds"] < rounds:
        raise ValueError(f"pruning.ticket_masks: {path} holds masks of {saved['rounds']} rounds for layers "
                         f"{ {p: tuple(t.shape) for p, t in pruned_at.items()} }; this run needs {rounds} rounds of {shapes}")
    return pruned_at
