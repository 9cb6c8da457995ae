"""Real-image statistics (FID sums, features for KID and PR), cached on disk and written atomically."""

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from prunegen.metrics.extractors import FeatureExtractor, fingerprint
from prunegen.metrics.images import ImageSource

CACHE_VERSION = 1  # bump when what is stored, or how it is computed, changes


def save_atomic(payload: Any, path: str | Path) -> Path:
    """torch.save to a temp file beside `path`, then rename: readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a shared cache from other users
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


@dataclass
class RealStats:
    """What the scores need from the real images: FID's sums (float64) and the features for KID/PR (CPU)."""

    features_sum: Tensor  # (D,) float64, sum over images
    features_cov_sum: Tensor  # (D, D) float64, sum of outer products
    features: Tensor  # (N, D) in the extractor's dtype, on the CPU

    @property
    def num(self) -> int:
        return len(self.features)


@torch.no_grad()
def compute_real_stats(extractor: FeatureExtractor, batches: Iterable[Tensor], device: torch.device | str) -> RealStats:
    """Run `extractor` over float batches in [-1, 1]; sums accumulate like torchmetrics' FID states."""
    total = cov = None
    features = []
    for x in batches:
        f = extractor.extract(x.to(device))[0]  # (B, D)
        f64 = f.double()
        total = f64.sum(0) if total is None else total + f64.sum(0)
        cov = f64.t().mm(f64) if cov is None else cov + f64.t().mm(f64)
        features.append(f.cpu())
    if total is None:
        raise ValueError("no real images to compute statistics from")
    return RealStats(total.cpu(), cov.cpu(), torch.cat(features))


def real_stats_key(source: ImageSource, extractor: FeatureExtractor, weights: str | None = None) -> dict[str, Any]:
    """Everything the statistics depend on: (dataset, split, image size, extractor, weights hash, number of images)."""
    return {
        "dataset": source.name,
        "split": source.split,
        "image_size": source.image_size,
        "extractor": extractor.name,
        "weights": weights or fingerprint(extractor),
        "resize": extractor.resize,
        "num_real": source.count,
        "content": source.content,
        "version": CACHE_VERSION,
    }


def real_stats_path(cache_dir: str | Path, key: dict[str, Any]) -> Path:
    """`<cache_dir>/real_stats/<dataset>_<split>_<size>px_<extractor>_<n>_<hash>.pt`."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    dataset = re.sub(r"[^A-Za-z0-9.-]+", "-", key["dataset"]).strip("-")[-40:]
    name = f"{dataset}_{key['split']}_{key['image_size']}px_{key['extractor']}_{key['num_real']}_{digest}.pt"
    return Path(cache_dir) / "real_stats" / name


def load_real_stats(path: Path, key: dict[str, Any]) -> RealStats | None:
    """The cached statistics at `path` if they were stored under exactly `key`."""
    if not path.is_file():
        return None
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("key") != key:
        return None
    return RealStats(payload["features_sum"], payload["features_cov_sum"], payload["features"])


def load_or_compute_real_stats(
    extractor: FeatureExtractor,
    batches: Iterable[Tensor],
    key: dict[str, Any],
    cache_dir: str | Path | None,
    device: torch.device | str = "cpu",
) -> tuple[RealStats, bool]:
    """(statistics, whether they came from the cache); computed and cached on a miss (no cache if dir is None)."""
    path = real_stats_path(cache_dir, key) if cache_dir is not None else None
    cached = load_real_stats(path, key) if path is not None else None
    if cached is not None:
        return cached, True
    stats = compute_real_stats(extractor, batches, device)
    if stats.num != key["num_real"]:
        raise ValueError(f"expected {key['num_real']} real images, got {stats.num}")
    if path is not None:
        payload = {"key": key, "features_sum": stats.features_sum, "features_cov_sum": stats.features_cov_sum}
        save_atomic({**payload, "features": stats.features}, path)
    return stats, False
