"""The one way to build a scorer: a `ScorerSpec` (the settings of `configs/metrics/*.yaml`, its extractor a
`_target_` node) turned into a `GeneratorScorer` for a dataset or a folder of real images.

The evaluation callback holds one and so does `prunegen-eval` (`instantiate(cfg.metrics).spec`).
"""

from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from prunegen import CONFIG_DIR
from prunegen.choices import check_choice
from prunegen.data.protocol import ImageData
from prunegen.metrics.cache import load_or_compute_real_stats, real_stats_key
from prunegen.metrics.checks import MIN_ACCURACY, MIN_IMAGES, check_extractor
from prunegen.metrics.extractors import ClassifierExtractor, FeatureSpec, domain_classifier
from prunegen.metrics.images import from_datamodule, from_folder
from prunegen.metrics.scores import GeneratorScorer

EXTRACTOR_DIR = Path(CONFIG_DIR) / "metrics" / "extractor"


def extractor_spec(extractor: FeatureSpec | str, inception_weights: str | None = None) -> FeatureSpec:
    """`extractor` itself, or for a name (`metrics.extractor=inception` on the command line) the node of
    `configs/metrics/extractor/<name>.yaml` built as `metrics/extractor=<name>` would build it."""
    if not isinstance(extractor, str):
        return extractor
    path = EXTRACTOR_DIR / f"{extractor}.yaml"
    if not path.is_file():
        names = sorted(p.stem for p in EXTRACTOR_DIR.glob("*.yaml"))
        check_choice("metrics.extractor", extractor, names, extra="(configs/metrics/extractor/)")
    # The node reads its neighbours (${..inception_weights}) as it does inside the metrics config.
    node = OmegaConf.create({"inception_weights": inception_weights, "extractor": OmegaConf.load(path)})
    return instantiate(node.extractor)


@dataclass
class ScorerSpec:
    """How to score: the extractor, the sample budget and the real images (a split of the dataset)."""

    extractor: FeatureSpec
    num_samples: int = 5000
    batch_size: int = 500
    real_split: str = "train"
    num_real: int | None = None  # the first num_real images of the split (None: all)
    pr_k: int = 3  # k of the k-NN balls of precision/recall
    max_features: int | None = 10000  # features kept per side for KID and precision/recall (None: all)
    cache_dir: str | Path | None = ".cache"  # domain classifiers and real statistics (None: no cache)
    seed: int = 0
    min_extractor_accuracy: float = MIN_ACCURACY  # a domain classifier below it on its held-out split: refused
    min_extractor_images: int = MIN_IMAGES  # ... or measured on fewer held-out images

    def __post_init__(self) -> None:
        if self.num_samples < 10:
            raise ValueError(f"metrics.num_samples must be >= 10, got {self.num_samples}")
        if self.batch_size < 1:
            raise ValueError(f"metrics.batch_size must be >= 1, got {self.batch_size}")
        if self.pr_k < 1:
            raise ValueError(f"metrics.pr_k must be >= 1, got {self.pr_k}")
        if not 0 <= self.min_extractor_accuracy <= 1:
            raise ValueError(f"metrics.min_extractor_accuracy must be in [0, 1], got {self.min_extractor_accuracy}")
        if self.max_features is not None and self.max_features <= self.pr_k:
            raise ValueError(f"metrics.max_features must be > metrics.pr_k={self.pr_k} or null, got {self.max_features}")

    def build(
        self, datamodule: ImageData | None = None, device: torch.device | str = "cpu", real_dir: str | Path | None = None
    ) -> GeneratorScorer:
        """The scorer against `real_dir`'s images, or else `datamodule`'s `real_split`; real statistics and the
        domain classifier come from the cache when there. Class coverage needs a labelled `datamodule`."""
        extractor = self.extractor.build(datamodule, self.cache_dir, device)
        coverage = extractor if isinstance(extractor, ClassifierExtractor) else None
        if coverage is None and datamodule is not None and datamodule.num_classes:
            coverage = domain_classifier(datamodule, self.cache_dir, device=device)
        valid = all(self._proven(c, datamodule) for c in {id(x): x for x in (extractor, coverage) if x is not None}.values())
        if real_dir is not None:
            real = from_folder(real_dir, extractor.channels, self.num_real)
        elif datamodule is not None:
            real = from_datamodule(datamodule, self.real_split, self.num_real)
        else:
            raise ValueError("scoring needs the real images: a dataset (data=NAME) or a folder (real_dir=PATH)")
        stats, cached = load_or_compute_real_stats(
            extractor, real, self.cache_dir, self.batch_size, device, self.max_features
        )
        scorer = GeneratorScorer(
            extractor, stats, self.batch_size, pr_k=self.pr_k, max_features=self.max_features, coverage=coverage
        )
        scorer.real_cached = cached
        scorer.valid = valid
        if real_dir is None:  # the held-out real images against the real statistics: the yardstick of every score
            key = real_stats_key(real, extractor, self.max_features)
            scorer.floor_source = (datamodule, self.real_split, key, self.cache_dir, self.seed)
        return scorer

    def _proven(self, extractor: object, datamodule: ImageData | None) -> bool:
        """A domain classifier's held-out accuracy against the thresholds (refused below them); others pass."""
        if not isinstance(extractor, ClassifierExtractor) or datamodule is None:
            return True
        held_out = len(datamodule.split_tensors("test")[1])
        return check_extractor(extractor.accuracy, held_out, extractor.num_classes, self.min_extractor_accuracy,
                               self.min_extractor_images)
