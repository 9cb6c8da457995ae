"""Feature extractors, and the specs that `configs/metrics/extractor/*.yaml` build (`_target_`).

A spec holds an extractor's settings from the config (checked before training); `build` makes the
extractor once the data and the device are known.
"""

from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from prunegen.data.protocol import ImageData
from prunegen.fileio import content_hash
from prunegen.metrics.classifier import DomainClassifier, load_or_train_classifier


@runtime_checkable
class FeatureExtractor(Protocol):
    """What the scorer needs from an extractor; images are float (N, C, H, W) in [-1, 1]."""

    name: str  # labels every score, e.g. "classifier" or "inception"
    num_features: int
    num_logits: int
    channels: int  # how many channels it reads image files with (1 or 3)
    accuracy: float | None  # test accuracy on the dataset, None where it has none (Inception)
    resize: str  # how images reach the network's input size, recorded in metrics.json

    def extract(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(features (N, num_features), logits (N, num_logits)) in one forward pass."""
        ...


@runtime_checkable
class FeatureSpec(Protocol):
    """A `metrics/extractor/*.yaml` node, built by Hydra: the extractor's settings."""

    name: str

    def build(
        self, datamodule: ImageData | None, cache_dir: str | Path | None, device: torch.device | str
    ) -> FeatureExtractor:
        """The extractor for `datamodule` (None: no dataset, e.g. folder against folder) on `device`."""
        ...


def fingerprint(module: nn.Module) -> str:
    """sha256 (16 hex digits) of a module's state dict: names, shapes, dtypes and values."""
    return content_hash(module.state_dict())


class ClassifierExtractor(nn.Module):
    """The domain classifier as a FeatureExtractor: penultimate features and class logits."""

    name = "classifier"
    resize = "none"  # the classifier sees the dataset's own resolution

    def __init__(self, classifier: DomainClassifier, accuracy: float | None = None) -> None:
        super().__init__()
        self.classifier = classifier.eval().requires_grad_(False)
        self.num_features = classifier.num_features
        self.num_classes = self.num_logits = classifier.head.out_features
        self.channels = classifier.in_channels
        self.accuracy = accuracy

    def train(self, mode: bool = True) -> "ClassifierExtractor":
        """Stay in eval mode: BatchNorm must use its running statistics."""
        return super().train(False)

    def extract(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(features, logits) of x."""
        features = self.classifier.features(x)
        return features, self.classifier.head(features)


def domain_classifier(
    datamodule: ImageData,
    cache_dir: str | Path | None,
    epochs: int = 8,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> ClassifierExtractor:
    """The dataset's domain classifier (cached by the data's content, trained on first use)."""
    return ClassifierExtractor(*load_or_train_classifier(datamodule, cache_dir, epochs, seed, device))


class ClassifierFeatures:
    """`metrics/extractor=classifier`: a small CNN trained on the dataset's own train split."""

    name = "classifier"

    def __init__(self, epochs: int = 8, seed: int = 0) -> None:
        if epochs < 1:
            raise ValueError(f"metrics.extractor.epochs must be >= 1, got {epochs}")
        self.epochs, self.seed = epochs, seed

    def build(
        self, datamodule: ImageData | None, cache_dir: str | Path | None, device: torch.device | str = "cpu"
    ) -> ClassifierExtractor:
        """The cached (or newly trained) classifier of `datamodule`."""
        if datamodule is None or not datamodule.num_classes:
            raise ValueError("metrics.extractor=classifier needs a labelled dataset to train on: set data=NAME")
        return domain_classifier(datamodule, cache_dir, self.epochs, self.seed, device)
