"""torchmetrics' FID/KID/IS with fixed real statistics, plus precision/recall and a class histogram.

Real-image states are loaded from the cache on every rank, so a DDP sync gathers only the fake-image
states (each rank scores its share of the samples). Feature lists live on the CPU; the math runs on
the metric's device.
"""

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch_fidelity.metric_prc import calculate_precision_recall_part
from torchmetrics import Metric
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance
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


class _FakeStatesSync:
    """Mixin: leave `real_states` out of the DDP sync; they are identical on every rank."""

    real_states: tuple[str, ...] = ()

    def _sync_dist(self, dist_sync_fn: Callable = gather_all_tensors, process_group: Any = None) -> None:
        reductions = self._reductions
        self._reductions = {k: v for k, v in reductions.items() if k not in self.real_states}
        try:
            super()._sync_dist(_gather_on(self.device, dist_sync_fn), process_group)
        finally:
            self._reductions = reductions


class FID(_FakeStatesSync, FrechetInceptionDistance):
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


class _ComputeOnDevice:
    """Mixin: list states are kept on the CPU (compute_on_cpu) but concatenated onto the metric's device to compute."""

    list_states: tuple[str, ...] = ()

    def compute(self) -> Any:
        saved = {k: getattr(self, k) for k in self.list_states}
        for k, v in saved.items():
            setattr(self, k, [dim_zero_cat(v).to(self.device)] if isinstance(v, list) and v else v)
        try:
            return super().compute()
        finally:
            for k, v in saved.items():
                setattr(self, k, v)


class KID(_FakeStatesSync, _ComputeOnDevice, KernelInceptionDistance):
    """KID with the real features fixed and every feature list on the CPU."""

    real_states = ("real_features",)
    list_states = ("real_features", "fake_features")

    def __init__(self, feature: nn.Module, subsets: int = 100, **kwargs: Any) -> None:
        with warnings.catch_warnings():  # "will save all extracted features": on the CPU, by design
            warnings.filterwarnings("ignore", "Metric `Kernel Inception Distance` will save", UserWarning)
            super().__init__(feature=feature, subsets=subsets, reset_real_features=False, compute_on_cpu=True, **kwargs)

    def set_real(self, stats: RealStats) -> None:
        self.real_features = [stats.features]


class IS(_FakeStatesSync, InceptionScore):
    """Inception Score of the logits; normalize=False, so float images reach the extractor unchanged."""

    def __init__(self, feature: nn.Module, splits: int = 10, **kwargs: Any) -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Metric `InceptionScore` will save", UserWarning)
            super().__init__(feature=feature, splits=splits, compute_on_cpu=True, **kwargs)


class PrecisionRecall(_FakeStatesSync, Metric):
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN balls; torch-fidelity's math.

    Precision: fraction of fakes inside some real image's k-NN ball; recall: fraction of reals inside
    some fake's ball.
    """

    real_states = ("real_features",)
    full_state_update = False

    def __init__(self, feature: nn.Module, k: int = 3, row_batch: int = 1000, **kwargs: Any) -> None:
        super().__init__(compute_on_cpu=True, **kwargs)
        if k < 1:
            raise ValueError(f"precision/recall k must be >= 1, got {k}")
        self.feature, self.k, self.row_batch = feature, k, row_batch
        self.add_state("real_features", [], dist_reduce_fx="cat")
        self.add_state("fake_features", [], dist_reduce_fx="cat")

    def set_real(self, stats: RealStats) -> None:
        self.real_features = [stats.features]

    def update(self, imgs: Tensor, real: bool) -> None:
        (self.real_features if real else self.fake_features).append(self.feature(imgs))

    def compute(self) -> tuple[Tensor, Tensor]:
        real = dim_zero_cat(self.real_features).to(self.device)
        fake = dim_zero_cat(self.fake_features).to(self.device)
        if min(len(real), len(fake)) <= self.k:
            raise ValueError(f"precision/recall need more than k={self.k} real and fake images")
        precision, recall = calculate_precision_recall_part(fake.float(), real.float(), self.k, self.row_batch)
        return torch.tensor(precision), torch.tensor(recall)


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
