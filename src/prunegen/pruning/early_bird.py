"""Early-bird tickets for GANs (Kalibhat et al., AAAI 2021; You et al., ICLR 2020 for classifiers)."""

from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info

from prunegen.masks import effective_weight, prunable_layers
from prunegen.pruning.callback import PruningCallback


class EarlyBirdPruning(PruningCallback):
    """During dense training, the global-magnitude mask at `final_sparsity` is computed after every epoch;
    at the first epoch whose last `window` masks differ pairwise in at most `tolerance` of their positions,
    that mask is applied (the early-bird ticket) and the rest of the run trains the ticket.

    Recorded: the epoch, the pairwise distances, and the training saved against dense training to the end
    (`dense_epochs_saved_fraction`; with unstructured sparsity the ticket's generator needs `1 - sparsity`
    of the dense MACs, so `generator_flops_saved_fraction` = saved epochs x sparsity / all epochs).
    """

    def __init__(
        self,
        targets: list[str] = ("generator",),
        final_sparsity: float = 0.5,
        window: int = 5,
        tolerance: float = 0.1,
        scope: str = "global",
        ignore: list[str] = (),
        rewind: str | None = None,
    ) -> None:
        super().__init__(targets, "magnitude", "unstructured", scope, final_sparsity, ignore=ignore, rewind=rewind)
        if window < 2:
            raise ValueError(f"pruning.window must be >= 2 (masks compared pairwise), got {window}")
        if not 0 <= tolerance < 1:
            raise ValueError(f"pruning.tolerance must be in [0, 1), got {tolerance}")
        self.window, self.tolerance = window, tolerance
        self.history: list[torch.Tensor] = []  # the last `window` candidate masks, flattened, bool
        self.found: dict[str, Any] | None = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        if self.rewinder is not None:
            self.rewinder.maybe_snapshot(pl_module, self.targets, epoch=epoch + 1)
        if self.found is None:
            self.history = [*self.history, self.candidate(pl_module)][-self.window :]
            distance = max_pairwise_distance(self.history) if len(self.history) == self.window else None
            pl_module.log("prune/early_bird_distance", distance if distance is not None else 1.0, on_epoch=True)
            if distance is not None and distance <= self.tolerance:
                self._draw(trainer, pl_module, epoch, distance)
        pl_module.log("prune/sparsity", self.sparsity(pl_module), on_epoch=True)

    def _draw(self, trainer: L.Trainer, pl_module: L.LightningModule, epoch: int, distance: float) -> None:
        self.prune(pl_module, self.schedule.final, seed=epoch, epoch=epoch)
        if self.rewinder is not None:
            self.rewinder.rewind(pl_module, trainer.optimizers)
        saved = max(trainer.max_epochs - (epoch + 1), 0) / trainer.max_epochs
        self.found = {"epoch": epoch, "max_pairwise_distance": distance, "window": self.window,
                      "tolerance": self.tolerance, "dense_epochs_saved_fraction": saved,
                      "generator_flops_saved_fraction": saved * self.sparsity(pl_module)}
        self.history = []
        rank_zero_info(f"early-bird ticket at epoch {epoch}: last {self.window} masks within {distance:.3f}")

    @torch.no_grad()
    def candidate(self, pl_module: L.LightningModule) -> torch.Tensor:
        """The global-magnitude mask (1 = keep) at the target sparsity, over all target layers, flattened."""
        layers = prunable_layers(pl_module, self.targets, self.ignore)
        scores = torch.cat([effective_weight(m).detach().abs().flatten().cpu() for m in layers.values()])
        k = round(self.schedule.final * scores.numel())
        mask = torch.ones(scores.numel(), dtype=torch.bool)
        if k > 0:
            mask[torch.topk(scores, k, largest=False).indices] = False
        return mask

    def record(self, trainer: L.Trainer | None = None, pl_module: L.LightningModule | None = None) -> dict[str, Any]:
        parent = getattr(super(), "record", None)
        out = parent(trainer, pl_module) if parent is not None else {"pruning": {}}
        out.setdefault("pruning", {})["early_bird"] = self.found
        return out

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "history": self.history, "found": self.found}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.history, self.found = list(state_dict["history"]), state_dict["found"]


def max_pairwise_distance(masks: list[torch.Tensor]) -> float:
    """The largest fraction of positions in which two of the masks differ."""
    return max((a != b).float().mean().item() for i, a in enumerate(masks) for b in masks[i + 1 :])
