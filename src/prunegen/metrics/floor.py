"""The real-vs-real floor: what each metric gives for real images against real images, the yardstick
beside every score (an FID of 0.9 means little until one knows that real data scores 0.3).

The held-out real images (the splits other than the real statistics' own: val and test when those are
"train") are scored like a generator's samples, against the same real statistics, by the same scorer:
FID, KID, IS, precision/recall and class coverage of real data. Two disjoint real sets at the run's
sample size would be exact; the data seldom has that many held-out images, so the floor uses all of them
(at most the run's sample size) and records how many (`floor_num_images`): FID's bias grows as the set
shrinks, so with fewer held-out images than the run's samples the floor errs high, never low. Computed once per content and settings and
cached beside the real statistics (`real_stats/floor_<hash>.json`).
"""

import json
import logging
from pathlib import Path
from typing import Any

import torch

from prunegen.data.protocol import SPLITS, ImageData
from prunegen.fileio import content_hash, write_json

log = logging.getLogger("prunegen")

FLOOR_KEYS = {"fid": "fid_floor", "kid_mean": "kid_floor", "is_mean": "is_floor", "precision": "precision_floor",
              "recall": "recall_floor", "class_coverage": "classes_floor"}
FLOOR_VERSION = 1


def held_out_splits(real_split: str) -> list[str]:
    """The splits disjoint from the real statistics' one: val and test (train when the statistics use those)."""
    others = [s for s in SPLITS if s not in (real_split, "train")]
    return others if real_split == "train" else [s for s in SPLITS if s != real_split]


def held_out_images(datamodule: ImageData, real_split: str) -> tuple[torch.Tensor, list[str]]:
    splits = held_out_splits(real_split)
    images = [datamodule.split_tensors(s)[0] for s in splits]
    return torch.cat(images) if images else torch.empty(0), splits


def floor_path(cache_dir: str | Path, key: dict[str, Any]) -> Path:
    return Path(cache_dir) / "real_stats" / f"floor_{content_hash(key)}.json"


def real_floor(scorer: Any, datamodule: ImageData, real_split: str, real_key: dict[str, Any],
               cache_dir: str | Path | None, seed: int = 0, num_samples: int | None = None) -> dict[str, Any]:
    """`{fid_floor, kid_floor, is_floor, precision_floor, recall_floor, classes_floor, floor_num_images,
    floor_splits}` of `datamodule`'s held-out images (at most `num_samples`, the run's sample size) against
    `scorer`'s real statistics (cached)."""
    key = {"real": real_key, "data": datamodule.fingerprint(), "real_split": real_split, "pr_k": scorer.pr_k,
           "kid": [scorer.kid_subsets, scorer.kid_subset_size], "coverage": scorer.coverage is not None,
           "seed": seed, "num_samples": num_samples, "version": FLOOR_VERSION}
    path = floor_path(cache_dir, key) if cache_dir is not None else None
    if path is not None and path.is_file():
        stored = json.loads(path.read_text())
        if stored.get("key") == json.loads(json.dumps(key, default=str)):
            return stored["floor"]
    images, splits = held_out_images(datamodule, real_split)
    images = images[:num_samples] if num_samples else images
    if len(images) < 2:
        log.warning(f"no held-out real images besides the {real_split!r} split: no real-vs-real floor")
        return {"floor_num_images": 0, "floor_splits": splits}
    log.info(f"real-vs-real floor: scoring the {len(images)} held-out real images ({'+'.join(splits)}) against "
             f"the {real_split!r} statistics (once; cached)")
    batch = scorer.batch_size
    scores = scorer.score_images((images[i : i + batch] for i in range(0, len(images), batch)), len(images), seed=seed)
    floor = {name: scores.get(metric) for metric, name in FLOOR_KEYS.items()}
    floor.update(floor_num_images=len(images), floor_splits=splits)
    if path is not None:
        write_json(path, {"key": key, "floor": floor})
    return floor
