"""FID, KID, IS, precision/recall and class coverage of a generator (or a set of images) against fixed real statistics."""

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
import torch_fidelity
import torchmetrics
from torch import Tensor, nn

from prunegen.metrics.cache import RealStats, compute_real_stats, kept_indices
from prunegen.metrics.extractors import ClassifierExtractor, FeatureExtractor, fingerprint
from prunegen.metrics.images import from_tensor
from prunegen.metrics.rng import isolated_rng
from prunegen.metrics.streaming import (
    FID,
    IS,
    ClassHistogram,
    FeatureSample,
    Identity,
    is_splits,
    kid,
    kid_subsets,
    precision_recall,
)

# The real-vs-real floor beside every score (metrics/floor.py); None where there is none (folder vs folder).
# `fid_at_floor_n`: the FID at the floor's sample size (the mean over up to 10 disjoint sets of `floor_num_images`
# samples), to set beside `fid_floor`: FID's bias grows as the set shrinks, and the held-out real images are
# often fewer than the samples.
FLOOR_RESULT_KEYS = ("fid_floor", "kid_floor", "is_floor", "precision_floor", "recall_floor", "classes_floor",
                     "floor_num_images", "floor_splits", "fid_at_floor_n")
# Measured, not computed: two scorings of the same samples differ here (and ranks differ under DDP; rank 0's is kept).
TIMING_KEYS = ("sampling_images_per_s",)
# Every score's record, in this order (metrics.json keys under `metrics.`).
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
    "valid",
    "extractor_weights",
    "resize",
    "num_samples",
    "num_real",
    "sampler_steps",
    "sampling_images_per_s",
    "kid_subset_size",
    "max_features",
    "torchmetrics_version",
    "torch_fidelity_version",
    *FLOOR_RESULT_KEYS,
)


@runtime_checkable
class Sampleable(Protocol):
    """A generative model as the metrics see it (the LightningModules; `GeneratorSampler` over a bare net)."""

    generator: nn.Module

    def sample(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """n images in [-1, 1]."""
        ...


def coverage_from_counts(counts: Tensor) -> float:
    """exp(entropy) of a class histogram: the effective number of classes."""
    p = counts.double() / counts.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def class_coverage(logits_or_labels: Tensor, num_classes: int) -> float:
    """Effective number of predicted classes: 10.0 for uniform over 10 classes, 1.0 for one class."""
    labels = logits_or_labels.argmax(dim=1) if logits_or_labels.dim() == 2 else logits_or_labels
    return coverage_from_counts(torch.bincount(labels.long().flatten().cpu(), minlength=num_classes))


def model_device(model: Sampleable) -> torch.device:
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


@dataclass
class _Plan:
    """What one scoring draws before the first sample, from its seed: KID's subsets and IS's splits."""

    num_samples: int
    kid: list[tuple[Tensor, Tensor]]
    kid_subset_size: int


class GeneratorScorer:
    """Owns the metric states; real statistics are fixed (given, or computed on the first `score`).

    A plain object, not an nn.Module, so assigning it to a LightningModule never makes the metrics
    (and the extractor's weights) part of the model's state dict. Under torch.distributed each rank
    scores every world_size-th batch (none is fine) and the metrics gather or sum the fake-image states.
    Memory does not grow with the number of samples beyond `max_features` features per side (KID and
    precision/recall read a fixed uniform sample of that size; FID and IS stream).
    """

    def __init__(
        self,
        extractor: FeatureExtractor,
        real: RealStats | Tensor,
        batch_size: int = 500,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        is_splits: int = 10,
        pr_k: int = 3,
        max_features: int | None = 10000,
        coverage: ClassifierExtractor | None = None,
    ) -> None:
        if (real.num if isinstance(real, RealStats) else len(real)) < 2:
            raise ValueError("the real images need at least 2 images")
        if max_features is not None and max_features <= pr_k:
            raise ValueError(f"metrics.max_features must be > metrics.pr_k={pr_k} (or null), got {max_features}")
        self.extractor = extractor
        self.real = real if isinstance(real, RealStats) else None
        self.real_images = real if isinstance(real, Tensor) else None  # (N, C, H, W) in [-1, 1]
        self.real_cached = False  # whether `real` was read from the disk cache (set by ScorerSpec.build)
        self.valid = True  # False: its domain classifier passed only a lowered threshold (set by ScorerSpec.build)
        self.floor: dict[str, Any] | None = None  # the real-vs-real floor, computed at the first `score`
        self.floor_source: tuple | None = None  # (datamodule, real_split, real_key, cache_dir, seed), set by ScorerSpec.build
        self.batch_size, self.pr_k, self.max_features = batch_size, pr_k, max_features
        self.kid_subsets, self.kid_subset_size, self.is_splits = kid_subsets, kid_subset_size, is_splits
        # The domain classifier behind class_coverage: the extractor itself, or a separate one.
        self.coverage = extractor if coverage is None and isinstance(extractor, ClassifierExtractor) else coverage
        self.metrics = nn.ModuleDict(
            {
                "fid": FID(Identity(extractor.num_features)),
                "sample": FeatureSample(extractor.num_features),
                "is": IS(extractor.num_logits, splits=is_splits),
            }
        )
        if self.coverage is not None:
            self.metrics["classes"] = ClassHistogram(self.coverage.num_classes)
        self.weights = fingerprint(extractor)  # recorded with every score
        self.device: torch.device | None = None
        self._plan: _Plan | None = None

    def _prepare(self, device: torch.device, num_samples: int, seed: int) -> None:
        if num_samples < max(2, self.is_splits):
            raise ValueError(f"num_samples must be >= {max(2, self.is_splits)}, got {num_samples}")
        if self.device != device:
            self.metrics.to(device)
            self.extractor.to(device)
            if self.coverage is not None:
                self.coverage.to(device)
            self.device = device
        if self.real is None:
            source = from_tensor(self.real_images)
            self.real = compute_real_stats(self.extractor, source, self.batch_size, device, self.max_features)
        for metric in self.metrics.values():
            metric.reset()
        self.metrics["fid"].set_real(self.real)  # after `.to`
        num_fake = min(num_samples, self.max_features or num_samples)
        size = min(self.kid_subset_size, num_fake, len(self.real.features))
        with isolated_rng(seed):  # the draws torchmetrics' KID and IS make, in their order
            subsets = kid_subsets(len(self.real.features), num_fake, self.kid_subsets, size)
            self.metrics["is"].start(is_splits(num_samples, self.is_splits))
        keep = kept_indices(num_samples, self.max_features, seed)
        self.metrics["sample"].start(None if keep is None else torch.isin(torch.arange(num_samples), keep))
        self._plan = _Plan(num_samples, subsets, size)

    def _update(self, x: Tensor, index: Tensor) -> None:
        """Stream one batch of fake images; `index` (CPU) holds their sample indices."""
        features, logits = self.extractor.extract(x.float())
        self.metrics["fid"].update(features, real=False)
        self.metrics["sample"].update(features, index)
        self.metrics["is"].update(logits, index)
        if self.coverage is not None:
            classes = logits if self.coverage is self.extractor else self.coverage.extract(x.float())[1]
            self.metrics["classes"].update(classes)

    def _compute(self, sampler_steps: int | None = None, images_per_s: float | None = None) -> dict[str, Any]:
        m, plan = self.metrics, self._plan
        fake = m["sample"].compute().to(self.device)
        real = self.real.features.to(self.device)
        kid_mean, kid_std = kid(real, fake, plan.kid)
        is_mean, is_std = m["is"].compute()
        precision, recall = precision_recall(real, fake, self.pr_k)
        counts = m["classes"].compute() if self.coverage is not None else None
        fid = float(m["fid"].compute())
        floor = dict(self.floor or {})
        if floor.get("fid_floor") is not None:
            floor["fid_at_floor_n"] = self._fid_at_size(fake, floor["floor_num_images"]) or fid
        return {
            "fid": fid,
            "kid_mean": float(kid_mean),
            "kid_std": float(kid_std),
            "is_mean": float(is_mean),
            "is_std": float(is_std),
            "precision": precision,
            "recall": recall,
            "class_coverage": coverage_from_counts(counts) if counts is not None else None,
            "class_coverage_accuracy": self.coverage.accuracy if self.coverage is not None else None,
            "extractor": self.extractor.name,
            "extractor_accuracy": self.extractor.accuracy,
            "valid": self.valid,
            "extractor_weights": self.weights,
            "resize": self.extractor.resize,
            "num_samples": plan.num_samples,
            "num_real": self.real.num,
            "sampler_steps": sampler_steps,
            "sampling_images_per_s": images_per_s,
            "kid_subset_size": plan.kid_subset_size,
            "max_features": self.max_features,
            "torchmetrics_version": torchmetrics.__version__,
            "torch_fidelity_version": torch_fidelity.__version__,
            **{k: floor.get(k) for k in FLOOR_RESULT_KEYS},
        }

    def _fid_at_size(self, fake: Tensor, n: int, most: int = 10) -> float | None:
        """The mean FID of up to `most` disjoint runs of `n` kept samples (in sample order: uniform draws, also
        when `max_features` thinned them); None when `n` covers every sample (the FID itself is then the number)."""
        if n >= self._plan.num_samples or n < 2 or len(fake) < n:
            return None
        values = []
        for start in range(0, min(len(fake) // n, most) * n, n):
            fid = FID(Identity(fake.shape[1]), sync_on_compute=False).to(self.device)  # `fake` is already gathered
            fid.set_real(self.real)
            fid.update(fake[start : start + n], real=False)
            values.append(float(fid.compute()))
        return float(np.mean(values))

    @torch.no_grad()
    def score(
        self, model: Sampleable, num_samples: int, batch_size: int | None = None, seed: int = 0
    ) -> dict[str, Any]:
        """Sample `num_samples` images from `model` (labels None) and score them; global RNG untouched.

        Batch i holds `model.sample(n, generator=<CPU generator seeded by (seed, i)>)`, so the samples
        do not depend on the number of ranks; ranks without a batch still take part in the gathering.
        """
        if self.floor is None and self.floor_source is not None:  # every rank at once: scoring is collective
            from prunegen.metrics.floor import real_floor

            self.floor = real_floor(self, *self.floor_source, num_samples=num_samples)
        batch_size = batch_size or self.batch_size
        starts = range(0, num_samples, batch_size)
        rank, world = rank_and_world()
        device = model_device(model)
        self._prepare(device, num_samples, seed)
        sampled, seconds = 0, 0.0
        for i in range(rank, len(starts), world):
            n = min(batch_size, num_samples - starts[i])
            s = batch_seed(seed, i)
            start = time.perf_counter()
            with isolated_rng(s, device):  # also for models that draw from the global RNG
                images = model.sample(n, generator=torch.Generator().manual_seed(s))
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            sampled, seconds = sampled + n, seconds + time.perf_counter() - start
            self._update(images.to(device), torch.arange(starts[i], starts[i] + n))
        # The cost of the samples themselves (this rank's), beside the scores: fewer sampler steps is a compression axis.
        steps = getattr(getattr(model, "generator", None), "sampler_steps", None)
        return self._compute(steps, round(sampled / seconds, 2) if seconds > 0 else None)

    @torch.no_grad()
    def score_images(
        self, batches: Iterable[Tensor], num_images: int, device: torch.device | str = "cpu", seed: int = 0
    ) -> dict[str, Any]:
        """Score a fixed set of `num_images` images given as float batches in [-1, 1] (every world_size-th
        batch on each rank)."""
        rank, world = rank_and_world()
        self._prepare(torch.device(device), num_images, seed)
        seen = 0
        for i, x in enumerate(batches):
            if seen + len(x) > num_images:
                raise ValueError(f"expected {num_images} images, got more")
            if i % world == rank:
                self._update(x.to(device), torch.arange(seen, seen + len(x)))
            seen += len(x)
        if seen != num_images:
            raise ValueError(f"expected {num_images} images, got {seen}")
        return self._compute()
