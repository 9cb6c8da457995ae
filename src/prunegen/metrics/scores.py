"""FID, KID, IS, precision/recall and class coverage of a generator (or a set of images) against fixed real statistics."""

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
import torch_fidelity
import torchmetrics
from torch import Tensor, nn

from prunegen.metrics.cache import RealStats, compute_real_stats
from prunegen.metrics.extractors import (
    ClassifierExtractor,
    FeatureExtractor,
    FeatureModule,
    LogitsModule,
    SharedPass,
    fingerprint,
)
from prunegen.metrics.rng import isolated_rng
from prunegen.metrics.streaming import FID, IS, KID, ClassHistogram, PrecisionRecall

RESULT_KEYS = (
    "fid",
    "kid_mean",
    "kid_std",
    "is_mean",
    "is_std",
    "precision",
    "recall",
    "class_coverage",
    "class_coverage_accuracy",
    "extractor",
    "extractor_accuracy",
    "extractor_weights",
    "resize",
    "num_samples",
    "num_real",
    "torchmetrics_version",
    "torch_fidelity_version",
)


def coverage_from_counts(counts: Tensor) -> float:
    """exp(entropy) of a class histogram: the effective number of classes."""
    p = counts.double() / counts.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def class_coverage(logits_or_labels: Tensor, num_classes: int) -> float:
    """Effective number of predicted classes: 10.0 for uniform over 10 classes, 1.0 for one class."""
    labels = logits_or_labels.argmax(dim=1) if logits_or_labels.dim() == 2 else logits_or_labels
    return coverage_from_counts(torch.bincount(labels.long().flatten().cpu(), minlength=num_classes))


def model_device(model: Any) -> torch.device:
    """Device of the model's generator (CPU if it has no parameters)."""
    param = next(model.generator.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of the default process group; (0, 1) outside torch.distributed."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def batch_seed(seed: int, index: int) -> int:
    """A well-mixed seed for sample batch `index`: samples depend on (seed, index), not on the world size."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, np.uint64)[0] >> 1)


class GeneratorScorer:
    """Owns the metric states; real statistics are fixed (given, or computed on the first `score`).

    A plain object, not an nn.Module, so assigning it to a LightningModule never makes the metrics
    (and the extractor's weights) part of the model's state dict. Under torch.distributed each rank
    scores every world_size-th batch and the metrics gather the fake-image states.
    """

    def __init__(
        self,
        extractor: FeatureExtractor,
        real: RealStats | Tensor,
        batch_size: int = 500,
        kid_subsets: int = 100,
        is_splits: int = 10,
        pr_k: int = 3,
        coverage: ClassifierExtractor | None = None,
        weights: str | None = None,
    ) -> None:
        if (real.num if isinstance(real, RealStats) else len(real)) < 2:
            raise ValueError("the real images need at least 2 images")
        self.extractor = extractor
        self.real = real if isinstance(real, RealStats) else None
        self.real_images = real if isinstance(real, Tensor) else None  # (N, C, H, W) in [-1, 1]
        self.real_cached = False  # whether `real` was read from the disk cache (set by `scorer_for`)
        self.batch_size = batch_size
        self.is_splits = is_splits
        # The domain classifier behind class_coverage: the extractor itself, or a separate one.
        self.coverage = extractor if coverage is None and isinstance(extractor, ClassifierExtractor) else coverage
        self.shared = SharedPass(extractor)
        features, logits = FeatureModule(self.shared), LogitsModule(self.shared)
        self.metrics = nn.ModuleDict(
            {
                "fid": FID(features),
                "kid": KID(features, subsets=kid_subsets),
                "is": IS(logits, splits=is_splits),
                "pr": PrecisionRecall(features, k=pr_k),
            }
        )
        if self.coverage is not None:
            self.metrics["classes"] = ClassHistogram(self.coverage.num_classes)
        self.weights = weights or fingerprint(extractor)  # recorded with every score
        self.device: torch.device | None = None

    def _prepare(self, device: torch.device) -> None:
        if self.device != device:
            self.metrics.to(device)  # moves the extractor too
            if self.coverage is not None:
                self.coverage.to(device)
            self.device = device
        if self.real is None:
            self.real = compute_real_stats(self.extractor, iter_batches(self.real_images, self.batch_size), device)
        for metric in self.metrics.values():
            metric.reset()
        for name in ("fid", "kid", "pr"):
            self.metrics[name].set_real(self.real)  # after `.to`, which would move the CPU features

    def _update(self, x: Tensor) -> None:
        x = x.float()
        features, logits = self.shared(x)
        self.metrics["fid"].update(x, real=False)
        self.metrics["kid"].update(x, real=False)
        self.metrics["is"].update(x)
        self.metrics["pr"].update(x, real=False)
        if self.coverage is not None:
            self.metrics["classes"].update(logits if self.coverage is self.extractor else self.coverage.extract(x)[1])

    def _compute(self, num_samples: int, seed: int) -> dict[str, Any]:
        self.shared.clear()
        m = self.metrics
        m["kid"].subset_size = min(1000, num_samples, self.real.num)
        with isolated_rng(seed, self.device):  # KID subsets and the IS permutation use the global RNG
            kid_mean, kid_std = m["kid"].compute()
            is_mean, is_std = m["is"].compute()
        precision, recall = m["pr"].compute()
        values = (m["fid"].compute(), kid_mean, kid_std, is_mean, is_std, precision, recall)
        result: dict[str, Any] = dict(zip(RESULT_KEYS, (float(v) for v in values)))
        counts = m["classes"].compute() if self.coverage is not None else None
        result["class_coverage"] = coverage_from_counts(counts) if counts is not None else None
        result["class_coverage_accuracy"] = self.coverage.accuracy if self.coverage is not None else None
        result["extractor"] = self.extractor.name
        result["extractor_accuracy"] = self.extractor.accuracy
        result["extractor_weights"] = self.weights
        result["resize"] = self.extractor.resize
        result["num_samples"] = num_samples
        result["num_real"] = self.real.num
        result["torchmetrics_version"] = torchmetrics.__version__
        result["torch_fidelity_version"] = torch_fidelity.__version__
        return result

    def _check(self, num_samples: int, num_batches: int) -> tuple[int, int]:
        if num_samples < max(2, self.is_splits):
            raise ValueError(f"num_samples must be >= {max(2, self.is_splits)}, got {num_samples}")
        rank, world = rank_and_world()
        if num_batches < world:
            raise ValueError(f"{num_samples} samples make {num_batches} batches, fewer than the {world} ranks")
        return rank, world

    @torch.no_grad()
    def score(self, model: Any, num_samples: int, batch_size: int | None = None, seed: int = 0) -> dict[str, Any]:
        """Sample `num_samples` images from `model` (labels None) and score them; global RNG untouched.

        Batch i holds `model.sample(n, generator=<CPU generator seeded by (seed, i)>)`, so the samples
        do not depend on the number of ranks.
        """
        batch_size = batch_size or self.batch_size
        starts = range(0, num_samples, batch_size)
        rank, world = self._check(num_samples, len(starts))
        device = model_device(model)
        self._prepare(device)
        for i in range(rank, len(starts), world):
            n = min(batch_size, num_samples - starts[i])
            s = batch_seed(seed, i)
            with isolated_rng(s, device):  # also for models that draw from the global RNG
                self._update(model.sample(n, generator=torch.Generator().manual_seed(s)).to(device))
        return self._compute(num_samples, seed)

    @torch.no_grad()
    def score_images(
        self, batches: Iterable[Tensor], num_images: int, device: torch.device | str = "cpu", seed: int = 0
    ) -> dict[str, Any]:
        """Score a fixed set of images given as float batches in [-1, 1] (every world_size-th batch on each rank)."""
        rank, world = rank_and_world()
        self._prepare(torch.device(device))
        seen = num_batches = 0
        for i, x in enumerate(batches):
            seen, num_batches = seen + len(x), num_batches + 1
            if i % world == rank:
                self._update(x.to(device))
        self._check(seen, num_batches)
        if seen != num_images:
            raise ValueError(f"expected {num_images} images, got {seen}")
        return self._compute(num_images, seed)


def iter_batches(images: Tensor, batch_size: int) -> Iterator[Tensor]:
    """Consecutive slices of `images`."""
    for i in range(0, len(images), batch_size):
        yield images[i : i + batch_size]
