"""Real-image statistics (FID's sums over every image, a bounded sample of features for KID and
precision/recall), cached on disk under the images' content and written atomically."""

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from prunegen.fileio import content_hash, save_torch
from prunegen.metrics.extractors import FeatureExtractor, fingerprint
from prunegen.metrics.images import ImageSource

CACHE_VERSION = 2  # bump when what is stored, or how it is computed, changes


@dataclass
class RealStats:
    """What the scores need from the real images: FID's sums (float64) over all `num` images, and the
    features (CPU) of at most `max_features` of them (a fixed uniform sample) for KID and precision/recall."""

    features_sum: Tensor  # (D,) float64, sum over images
    features_cov_sum: Tensor  # (D, D) float64, sum of outer products
    features: Tensor  # (K, D) in the extractor's dtype, K = min(num, max_features), in image order
    num: int


log = logging.getLogger("prunegen")


def kept_indices(n: int, max_features: int | None, seed: int = 0) -> Tensor | None:
    """Sorted indices of a fixed uniform sample of `max_features` out of `n` items; None keeps all."""
    if max_features is None or n <= max_features:
        return None
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:max_features].sort().values


@torch.no_grad()
def compute_real_stats(
    extractor: FeatureExtractor,
    source: ImageSource,
    batch_size: int,
    device: torch.device | str,
    max_features: int | None = None,
) -> RealStats:
    """Run `extractor` over the images: sums accumulate like torchmetrics' FID states; features are kept
    only for the `kept_indices`, so memory is bounded whatever the number of images."""
    keep = kept_indices(source.count, max_features)
    total = cov = None
    features, seen = [], 0
    log.info(f"real statistics: {source.count} images of {source.name} ({source.split}) through {extractor.name} "
             f"(once; cached under the images' content)")
    step = max(1, source.count // 10)
    for x in source.batches(batch_size):
        if seen // step != (seen + len(x)) // step and seen:
            log.info(f"real statistics: {seen}/{source.count} images")
        f = extractor.extract(x.to(device))[0]  # (B, D)
        f64 = f.double()
        total = f64.sum(0) if total is None else total + f64.sum(0)
        cov = f64.t().mm(f64) if cov is None else cov + f64.t().mm(f64)
        rows = torch.arange(seen, seen + len(f))
        kept = rows if keep is None else rows[torch.isin(rows, keep)]
        features.append(f[(kept - seen).to(f.device)].cpu())
        seen += len(f)
    if total is None:
        raise ValueError("no real images to compute statistics from")
    if seen != source.count:
        raise ValueError(f"expected {source.count} real images, got {seen}")
    return RealStats(total.cpu(), cov.cpu(), torch.cat(features), seen)


def real_stats_key(source: ImageSource, extractor: FeatureExtractor, max_features: int | None) -> dict[str, Any]:
    """Everything the statistics depend on: the images' content, the extractor and its weights, the sample size."""
    return {
        "dataset": source.name,
        "split": source.split,
        "image_size": source.image_size,
        "content": source.content,
        "num_real": source.count,
        "extractor": extractor.name,
        "weights": fingerprint(extractor),
        "resize": extractor.resize,
        "max_features": max_features,
        "version": CACHE_VERSION,
    }


def real_stats_path(cache_dir: str | Path, key: dict[str, Any]) -> Path:
    """`<cache_dir>/real_stats/<dataset>_<split>_<size>px_<extractor>_<n>_<hash>.pt`."""
    dataset = re.sub(r"[^A-Za-z0-9.-]+", "-", key["dataset"]).strip("-")[-40:]
    name = f"{dataset}_{key['split']}_{key['image_size']}px_{key['extractor']}_{key['num_real']}_{content_hash(key)}.pt"
    return Path(cache_dir) / "real_stats" / name


def load_real_stats(path: Path, key: dict[str, Any]) -> RealStats | None:
    """The cached statistics at `path` if they were stored under exactly `key`."""
    if not path.is_file():
        return None
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("key") != key:
        return None
    return RealStats(payload["features_sum"], payload["features_cov_sum"], payload["features"], payload["num"])


def load_or_compute_real_stats(
    extractor: FeatureExtractor,
    source: ImageSource,
    cache_dir: str | Path | None,
    batch_size: int = 500,
    device: torch.device | str = "cpu",
    max_features: int | None = None,
) -> tuple[RealStats, bool]:
    """(statistics, whether they came from the cache); computed and cached on a miss (no cache if dir is None)."""
    key = real_stats_key(source, extractor, max_features)
    path = real_stats_path(cache_dir, key) if cache_dir is not None else None
    cached = load_real_stats(path, key) if path is not None else None
    if cached is not None:
        return cached, True
    stats = compute_real_stats(extractor, source, batch_size, device, max_features)
    if path is not None:
        save_torch({"key": key, **vars(stats)}, path)
    return stats, False
