"""Scoring generators: FID, KID, IS and class coverage through a pluggable feature extractor."""

from prunegen.metrics.callback import EvaluationCallback, build_scorer, evaluate_model
from prunegen.metrics.classifier import DomainClassifier, load_or_train_classifier
from prunegen.metrics.extractors import ClassifierExtractor, FeatureExtractor, FeatureModule, LogitsModule
from prunegen.metrics.scores import GeneratorScorer, class_coverage

__all__ = [
    "ClassifierExtractor",
    "DomainClassifier",
    "EvaluationCallback",
    "FeatureExtractor",
    "FeatureModule",
    "GeneratorScorer",
    "LogitsModule",
    "build_scorer",
    "class_coverage",
    "evaluate_model",
    "load_or_train_classifier",
]
