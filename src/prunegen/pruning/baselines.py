"""Lightning's own ModelPruning on explicit targets: the baseline prunegen is compared against."""

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelPruning

from prunegen.choices import check_choice
from prunegen.masks import effective_weight, get_mask, is_masked, prunable_layers
from prunegen.pruning.schedules import Schedule


class LightningModelPruning(ModelPruning):
    """`ModelPruning(l1_unstructured)` on the conv/linear weights of `targets` only (its default would prune
    every weight and bias of the whole module, discriminator included), lottery ticket off, with
    prunegen's schedule converted into ModelPruning's per-round amounts of the remaining weights."""

    def __init__(
        self,
        targets: list[str] = ("generator",),
        final_sparsity: float = 0.8,
        start_epoch: int = 0,
        end_epoch: int = 0,
        every_n_epochs: int = 1,
        scope: str = "global",
        use_lottery_ticket_hypothesis: bool = False,
        criterion: str = "magnitude",
    ) -> None:
        # an experiment that sets pruning.criterion for prunegen's callback (frontier_digits) composes with
        # this baseline too: L1 magnitude is the one criterion ModelPruning's l1_unstructured has
        check_choice("pruning.criterion", criterion, ("magnitude",), "(Lightning's ModelPruning prunes by L1 magnitude)")
        self.targets = list(targets)
        self.schedule = Schedule(final_sparsity, start_epoch, end_epoch, "linear", every_n_epochs)
        self.scope, self.criterion, self.granularity, self.method = scope, "magnitude", "unstructured", "lightning_modelpruning"
        super().__init__(
            pruning_fn="l1_unstructured",
            amount=self._amount,
            use_global_unstructured=scope == "global",
            use_lottery_ticket_hypothesis=use_lottery_ticket_hypothesis,
            parameter_names=["weight"],
            verbose=0,
        )

    def _amount(self, epoch: int) -> float:
        """ModelPruning prunes `amount` of the weights still alive; this reaches the scheduled total."""
        if not self.schedule.is_round(epoch):
            return 0.0
        before = self.schedule(epoch - 1) if epoch > self.schedule.start else 0.0
        return 1 - (1 - self.schedule(epoch)) / (1 - before)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._parameters_to_prune = [(m, "weight") for m in prunable_layers(pl_module, self.targets).values()]
        super().setup(trainer, pl_module, stage)

    def report(self, pl_module: L.LightningModule) -> list[dict[str, Any]]:
        rows = []
        for path, layer in prunable_layers(pl_module, self.targets).items():
            w = get_mask(layer) if is_masked(layer) else effective_weight(layer)
            n, nz = w.numel(), int(w.count_nonzero())
            rows.append({"layer": path, "weights": n, "nonzero": nz, "sparsity": 1 - nz / n})
        return rows

    def sparsity(self, pl_module: L.LightningModule) -> float:
        rows = self.report(pl_module)
        return 1 - sum(r["nonzero"] for r in rows) / sum(r["weights"] for r in rows)

    def record(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        """This callback's part of metrics.json (the keys of PruningCallback.record)."""
        return {"pruning": {"method": self.method, "criterion": self.criterion, "granularity": self.granularity,
                            "amount": "sparsity", "target_sparsity": self.schedule.final, "scope": self.scope,
                            "ignore": [], "achieved_sparsity": self.sparsity(pl_module), "layers": self.report(pl_module)}}
