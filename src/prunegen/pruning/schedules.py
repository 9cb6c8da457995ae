"""Sparsity schedules: callables from epoch (0-based, pruning at its end) to target sparsity."""

from dataclasses import dataclass

from prunegen.choices import check_choice

RAMPS = ("linear", "cubic")


@dataclass(frozen=True)
class Schedule:
    """Rounds at the end of epochs start, start+every, ..., <= end; sparsity reaches `final` at the last.

    `start == end` is one-shot; `every > 1` with `linear` is iterative pruning in equal steps;
    `cubic` is AGP (Zhu & Gupta 2017): s_k = final * (1 - (1 - k/n)^3).
    """

    final: float
    start: int = 0
    end: int = 0
    ramp: str = "linear"
    every: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.final < 1:
            raise ValueError(f"pruning.final_sparsity must be in [0, 1), got {self.final}")
        check_choice("pruning.ramp", self.ramp, RAMPS)
        if not 0 <= self.start <= self.end:
            raise ValueError(f"pruning needs 0 <= start_epoch <= end_epoch, got {self.start}, {self.end}")
        if self.every < 1:
            raise ValueError(f"pruning.every_n_epochs must be >= 1, got {self.every}")

    @property
    def rounds(self) -> int:
        return (self.end - self.start) // self.every + 1

    @property
    def last_round_epoch(self) -> int:
        return self.start + (self.rounds - 1) * self.every

    def is_round(self, epoch: int) -> bool:
        return self.start <= epoch <= self.end and (epoch - self.start) % self.every == 0

    def __call__(self, epoch: int) -> float:
        if epoch < self.start:
            return 0.0
        k = min((epoch - self.start) // self.every + 1, self.rounds)
        t = k / self.rounds
        return self.final * (t if self.ramp == "linear" else 1 - (1 - t) ** 3)


@dataclass(frozen=True)
class Geometric:
    """Iterative pruning with full rounds (GAN-LTH): round r (0-based) trains `epochs_per_round` epochs at
    sparsity 1 - (1 - rate)^r, so every prune removes `rate` of the weights that remain (0.2: 20%, 36%,
    48.8%, ... 67.2% after 5 prunes, 89.3% after 10). Round 0 is dense; the last round is not pruned.
    """

    rate: float = 0.2
    rounds: int = 11
    epochs_per_round: int = 1
    start_round: int = 0  # a run may start at a later round (the controls at a few sparsities)

    def __post_init__(self) -> None:
        if not 0 < self.rate < 1:
            raise ValueError(f"pruning.rate must be in (0, 1), got {self.rate}")
        if self.rounds < 1:
            raise ValueError(f"pruning.rounds must be >= 1, got {self.rounds}")
        if self.epochs_per_round < 1:
            raise ValueError(f"pruning.epochs_per_round must be >= 1, got {self.epochs_per_round}")
        if not 0 <= self.start_round < self.rounds:
            raise ValueError(f"pruning.start_round must be in [0, pruning.rounds), got {self.start_round}")

    @property
    def final(self) -> float:
        return self.sparsity(self.rounds - 1)

    @property
    def max_epochs(self) -> int:
        return (self.rounds - self.start_round) * self.epochs_per_round

    def sparsity(self, round_: int) -> float:
        """Sparsity at which round `round_` trains."""
        return 1 - (1 - self.rate) ** round_

    def round_of(self, epoch: int) -> int:
        return self.start_round + epoch // self.epochs_per_round

    def ends_round(self, epoch: int) -> bool:
        """The round is scored at the end of this epoch."""
        return (epoch + 1) % self.epochs_per_round == 0

    def is_round(self, epoch: int) -> bool:
        """A prune follows this epoch (every round's end but the last)."""
        return self.ends_round(epoch) and self.round_of(epoch) < self.rounds - 1

    def __call__(self, epoch: int) -> float:
        """Target sparsity after the end of `epoch`."""
        return self.sparsity(min(self.round_of(epoch) + self.ends_round(epoch), self.rounds - 1))
