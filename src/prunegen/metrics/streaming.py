"""Scores from streamed features, in memory bounded by the sample sizes, not by the number of images.

FID keeps torchmetrics' sums (and its math). KID and precision/recall read a fixed uniform sample of at
most `max_features` fake features (`FeatureSample`), chosen before sampling from the sample indices;
KID draws its subsets from it the way torchmetrics does. IS keeps, per split, the sum of the softmax rows
and of p·log p (`IS`). Every state is a torchmetrics state: under DDP each rank streams its share and
`compute()` gathers or sums them (a rank with no samples is fine). Real-image states are fixed, the same
on every rank, and left out of the sync.
"""

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch_fidelity.metric_prc import calculate_precision_recall_part
from torchmetrics import Metric
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import poly_mmd
from torchmetrics.utilities.data import dim_zero_cat
from torchmetrics.utilities.distributed import gather_all_tensors

from prunegen.metrics.cache import RealStats


def _gather_on(device: torch.device, gather: Callable) -> Callable:
    """`gather` run on `device` (NCCL cannot gather CPU tensors), results back where they came from."""

    def fn(t: Tensor, group: Any = None) -> list[Tensor]:
        if t.device == device:
            return gather(t, group=group)
        return [g.to(t.device) for g in gather(t.to(device), group=group)]

    return fn


class _SyncFakeStates:
    """Mixin: leave `real_states` out of the DDP sync (identical on every rank); gather on the metric's device."""

    real_states: tuple[str, ...] = ()

    def _sync_dist(self, dist_sync_fn: Callable = gather_all_tensors, process_group: Any = None) -> None:
        reductions = self._reductions
        self._reductions = {k: v for k, v in reductions.items() if k not in self.real_states}
        try:
            super()._sync_dist(_gather_on(self.device, dist_sync_fn), process_group)
        finally:
            self._reductions = reductions


class Identity(nn.Identity):
    """The `feature=` module of a metric fed with features: torchmetrics reads `num_features` from it."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features


class FID(_SyncFakeStates, FrechetInceptionDistance):
    """FID from feature sums (memory independent of the number of images), result in float64."""

    real_states = ("real_features_sum", "real_features_cov_sum", "real_features_num_samples")

    def __init__(self, feature: nn.Module, **kwargs: Any) -> None:
        super().__init__(feature=feature, reset_real_features=False, **kwargs)

    def set_real(self, stats: RealStats) -> None:
        self.real_features_sum = stats.features_sum.to(self.device)
        self.real_features_cov_sum = stats.features_cov_sum.to(self.device)
        self.real_features_num_samples = torch.tensor(stats.num, device=self.device)

    def compute(self) -> Tensor:
        self.orig_dtype = torch.float64  # torchmetrics casts its float64 result back to the features' dtype
        return super().compute()


class FeatureSample(_SyncFakeStates, Metric):
    """The features of the samples whose index is in `keep` (set by `start`), on the CPU, gathered in index order."""

    full_state_update = False

    def __init__(self, num_features: int, **kwargs: Any) -> None:
        super().__init__(compute_on_cpu=True, **kwargs)
        self.num_features = num_features
        self.keep: Tensor | None = None  # (N,) bool over sample indices; None keeps every sample
        self.add_state("features", [], dist_reduce_fx="cat")
        self.add_state("index", [], dist_reduce_fx="cat")

    def start(self, keep: Tensor | None) -> None:
        """Forget earlier samples; keep those with keep[index] from now on."""
        self.reset()
        self.keep = keep

    def update(self, features: Tensor, index: Tensor) -> None:
        rows = torch.ones(len(index), dtype=torch.bool) if self.keep is None else self.keep[index]
        if rows.any():
            self.features.append(features[rows.to(features.device)])
            self.index.append(index[rows].to(features.device))

    def _sync_dist(self, dist_sync_fn: Callable = gather_all_tensors, process_group: Any = None) -> None:
        if not self.features:  # a rank that kept nothing still takes part, with a (0, D) block
            self.features = [torch.empty(0, self.num_features, device=self.device)]
            self.index = [torch.empty(0, dtype=torch.long, device=self.device)]
        super()._sync_dist(dist_sync_fn, process_group)

    def compute(self) -> Tensor:
        """(K, D): the kept features, sorted by sample index (so the ranks' split does not matter)."""
        features, index = dim_zero_cat(self.features), dim_zero_cat(self.index)
        return features[index.argsort().to(features.device)]


class IS(_SyncFakeStates, Metric):
    """Inception Score, streamed: torchmetrics' math (softmax, splits of a random permutation, exp of the
    mean KL, mean and unbiased std over splits) from per-split sums of p and of p·log p.

    `start(split_of)` sets each sample index's split before sampling (see `is_splits`).
    """

    full_state_update = False

    def __init__(self, num_logits: int, splits: int = 10, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.splits = splits
        self.split_of: Tensor | None = None
        self.add_state("prob_sum", torch.zeros(splits, num_logits, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("plogp_sum", torch.zeros(splits, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros(splits, dtype=torch.long), dist_reduce_fx="sum")

    def start(self, split_of: Tensor) -> None:
        """Forget earlier samples; sample index i goes to split split_of[i]."""
        self.reset()
        self.split_of = split_of

    def update(self, logits: Tensor, index: Tensor) -> None:
        split = self.split_of[index].to(self.device)
        prob, log_prob = logits.softmax(dim=1), logits.log_softmax(dim=1)  # in the logits' dtype, as torchmetrics
        self.prob_sum.index_add_(0, split, prob.double())
        self.plogp_sum.index_add_(0, split, (prob * log_prob).sum(dim=1).double())
        self.count.index_add_(0, split, torch.ones_like(split))

    def compute(self) -> tuple[Tensor, Tensor]:
        used = self.count > 0
        n = self.count[used].double()
        mean_prob = self.prob_sum[used] / n[:, None]
        kl = self.plogp_sum[used] / n - torch.special.xlogy(mean_prob, mean_prob).sum(dim=1)
        scores = kl.exp()
        return scores.mean(), scores.std()


def is_splits(num_samples: int, splits: int) -> Tensor:
    """(N,) split of each sample index: torchmetrics' `randperm(N)` cut by `chunk(splits)` (global RNG)."""
    size = -(-num_samples // splits)  # chunk's ceil(N / splits): possibly fewer than `splits` splits
    split_of = torch.empty(num_samples, dtype=torch.long)
    split_of[torch.randperm(num_samples)] = torch.arange(num_samples) // size
    return split_of


def kid_subsets(num_real: int, num_fake: int, subsets: int, size: int) -> list[tuple[Tensor, Tensor]]:
    """(real rows, fake rows) of each KID subset, drawn from the global RNG in torchmetrics' order."""
    return [(torch.randperm(num_real)[:size], torch.randperm(num_fake)[:size]) for _ in range(subsets)]


def kid(real: Tensor, fake: Tensor, subsets: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """KID's mean and std over subsets (torchmetrics' polynomial-kernel MMD, degree 3)."""
    scores = torch.stack([poly_mmd(real[r.to(real.device)], fake[f.to(fake.device)]) for r, f in subsets])
    return scores.mean(), scores.std(unbiased=False)


def precision_recall(real: Tensor, fake: Tensor, k: int = 3, row_batch: int = 1000) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN balls; torch-fidelity's math.

    Precision: fraction of fakes inside some real image's k-NN ball; recall: fraction of reals inside
    some fake's ball.
    """
    if k < 1:
        raise ValueError(f"precision/recall k must be >= 1, got {k}")
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"precision/recall need more than k={k} real and fake images")
    precision, recall = calculate_precision_recall_part(fake.float(), real.float(), k, row_batch)
    return float(precision), float(recall)


class ClassHistogram(Metric):
    """Counts of predicted classes (argmax of logits), summed over ranks."""

    full_state_update = False

    def __init__(self, num_classes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("counts", torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: Tensor) -> None:
        self.counts += torch.bincount(logits.argmax(dim=1), minlength=len(self.counts)).to(self.counts)

    def compute(self) -> Tensor:
        return self.counts
