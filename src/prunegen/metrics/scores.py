"""FID, KID, IS and class coverage of a generator against fixed real statistics."""

from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance

from prunegen.metrics.extractors import FeatureExtractor, FeatureModule, LogitsModule, SharedPass
from prunegen.metrics.rng import isolated_rng

RESULT_KEYS = (
    "fid",
    "kid_mean",
    "kid_std",
    "is_mean",
    "is_std",
    "class_coverage",
    "extractor",
    "extractor_accuracy",
    "num_samples",
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


class GeneratorScorer:
    """Owns the torchmetrics states; real statistics are computed once, fakes on every `score`.

    A plain object, not an nn.Module, so assigning it to a LightningModule never makes the metrics
    (and the extractor's weights) part of the model's state dict.
    """

    def __init__(
        self,
        extractor: FeatureExtractor,
        real_images: Tensor,
        batch_size: int = 500,
        kid_subsets: int = 100,
        is_splits: int = 10,
    ) -> None:
        if len(real_images) < 2:
            raise ValueError(f"real_images needs at least 2 images, got {len(real_images)}")
        self.extractor = extractor
        self.real_images = real_images  # (N, C, H, W) in [-1, 1]
        self.batch_size = batch_size
        self.is_splits = is_splits
        self.shared = SharedPass(extractor)
        features, logits = FeatureModule(self.shared), LogitsModule(self.shared)
        # Every DDP rank scores the same samples itself, so nothing is gathered (and nothing double-counted).
        kw: dict[str, Any] = {"sync_on_compute": False}
        self.metrics = nn.ModuleDict(
            {
                "fid": FrechetInceptionDistance(feature=features, reset_real_features=False, **kw),
                "kid": KernelInceptionDistance(feature=features, subsets=kid_subsets, reset_real_features=False, **kw),
                "is": InceptionScore(feature=logits, splits=is_splits, **kw),  # normalize=False: no uint8 cast
            }
        )
        self.num_real = 0  # real images fed so far; stays fixed after the first `score`

    def _feed_real(self, device: torch.device) -> None:
        for i in range(0, len(self.real_images), self.batch_size):
            x = self.real_images[i : i + self.batch_size].to(device)
            self.metrics["fid"].update(x, real=True)
            self.metrics["kid"].update(x, real=True)
        self.num_real = len(self.real_images)
        self.shared.clear()

    def _feed_fake(self, model: Any, num_samples: int, batch_size: int) -> Tensor:
        counts = None
        for start in range(0, num_samples, batch_size):
            x = model.sample(min(batch_size, num_samples - start)).float()  # (B, C, H, W) in [-1, 1]
            logits = self.shared(x)[1]
            self.metrics["fid"].update(x, real=False)
            self.metrics["kid"].update(x, real=False)
            self.metrics["is"].update(x)
            batch_counts = torch.bincount(logits.argmax(dim=1).cpu(), minlength=logits.shape[1])
            counts = batch_counts if counts is None else counts + batch_counts
        self.shared.clear()
        return counts

    @torch.no_grad()
    def score(self, model: Any, num_samples: int, batch_size: int | None = None, seed: int = 0) -> dict[str, Any]:
        """Sample `num_samples` images from `model` (labels None) and score them; global RNG untouched."""
        if num_samples < max(2, self.is_splits):
            raise ValueError(f"num_samples must be >= {max(2, self.is_splits)}, got {num_samples}")
        device = model_device(model)
        self.metrics.to(device)
        if self.num_real == 0:
            self._feed_real(device)
        for metric in self.metrics.values():
            metric.reset()  # FID/KID keep their real statistics (reset_real_features=False)
        with isolated_rng(seed, device):  # same z every call; KID/IS subsets use the global RNG too
            counts = self._feed_fake(model, num_samples, batch_size or self.batch_size)
            self.metrics["kid"].subset_size = min(1000, num_samples, self.num_real)
            kid_mean, kid_std = self.metrics["kid"].compute()
            is_mean, is_std = self.metrics["is"].compute()
        values = (self.metrics["fid"].compute(), kid_mean, kid_std, is_mean, is_std)
        result: dict[str, Any] = dict(zip(RESULT_KEYS, (float(v) for v in values)))
        result["class_coverage"] = coverage_from_counts(counts)
        result["extractor"] = self.extractor.name
        result["extractor_accuracy"] = self.extractor.accuracy
        result["num_samples"] = num_samples
        return result
