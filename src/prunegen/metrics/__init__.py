"""Scoring generators: FID, KID, IS, precision/recall and class coverage through a pluggable feature extractor.

One path builds a scorer: `ScorerSpec(extractor, ...).build(datamodule | real_dir)`; the evaluation
callback holds a spec (`configs/metrics/*.yaml`, the extractor a `configs/metrics/extractor/*.yaml` node)
and `prunegen-eval` uses the same one.
"""

from prunegen.metrics.cache import RealStats, compute_real_stats, load_or_compute_real_stats, real_stats_key
from prunegen.metrics.callback import EvaluationCallback
from prunegen.metrics.classifier import DomainClassifier, load_or_train_classifier
from prunegen.metrics.extractors import (
    ClassifierExtractor,
    ClassifierFeatures,
    FeatureExtractor,
    FeatureSpec,
    domain_classifier,
    fingerprint,
)
from prunegen.metrics.images import ImageSource, from_datamodule, from_folder, from_tensor, save_images
from prunegen.metrics.inception import (
    InceptionExtractor,
    InceptionFeatures,
    random_inception_weights,
    resolve_inception_weights,
)
from prunegen.metrics.scores import RESULT_KEYS, GeneratorScorer, Sampleable, class_coverage
from prunegen.metrics.spec import ScorerSpec, extractor_spec
from prunegen.metrics.streaming import FID, IS, FeatureSample, precision_recall

__all__ = [
    "FID",
    "IS",
    "RESULT_KEYS",
    "ClassifierExtractor",
    "ClassifierFeatures",
    "DomainClassifier",
    "EvaluationCallback",
    "FeatureExtractor",
    "FeatureSample",
    "FeatureSpec",
    "GeneratorScorer",
    "ImageSource",
    "InceptionExtractor",
    "InceptionFeatures",
    "RealStats",
    "Sampleable",
    "ScorerSpec",
    "class_coverage",
    "compute_real_stats",
    "domain_classifier",
    "extractor_spec",
    "fingerprint",
    "from_datamodule",
    "from_folder",
    "from_tensor",
    "load_or_compute_real_stats",
    "load_or_train_classifier",
    "precision_recall",
    "random_inception_weights",
    "real_stats_key",
    "resolve_inception_weights",
    "save_images",
]
