"""Scoring generators: FID, KID, IS, precision/recall and class coverage through a pluggable feature extractor."""

from prunegen.metrics.cache import RealStats, compute_real_stats, load_or_compute_real_stats, real_stats_key
from prunegen.metrics.callback import (
    EXTRACTORS,
    EvaluationCallback,
    build_extractor,
    build_scorer,
    evaluate_model,
    scorer_for,
)
from prunegen.metrics.classifier import DomainClassifier, load_or_train_classifier
from prunegen.metrics.extractors import ClassifierExtractor, FeatureExtractor, FeatureModule, LogitsModule
from prunegen.metrics.images import ImageSource, from_datamodule, from_folder, save_images
from prunegen.metrics.inception import InceptionExtractor, random_inception_weights, resolve_inception_weights
from prunegen.metrics.scores import GeneratorScorer, class_coverage
from prunegen.metrics.streaming import FID, IS, KID, PrecisionRecall

__all__ = [
    "EXTRACTORS",
    "FID",
    "IS",
    "KID",
    "ClassifierExtractor",
    "DomainClassifier",
    "EvaluationCallback",
    "FeatureExtractor",
    "FeatureModule",
    "GeneratorScorer",
    "ImageSource",
    "InceptionExtractor",
    "LogitsModule",
    "PrecisionRecall",
    "RealStats",
    "build_extractor",
    "build_scorer",
    "class_coverage",
    "compute_real_stats",
    "evaluate_model",
    "from_datamodule",
    "from_folder",
    "load_or_compute_real_stats",
    "load_or_train_classifier",
    "random_inception_weights",
    "real_stats_key",
    "resolve_inception_weights",
    "save_images",
    "scorer_for",
]
