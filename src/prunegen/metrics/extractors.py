"""Feature extractors and the thin modules that plug them into torchmetrics' `feature=` argument."""

import hashlib
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

if TYPE_CHECKING:  # classifier.py imports the cache, which imports this module
    from prunegen.metrics.classifier import DomainClassifier


@runtime_checkable
class FeatureExtractor(Protocol):
    """What the scorer needs from an extractor; images are float (N, C, H, W) in [-1, 1]."""

    name: str  # labels every score, e.g. "classifier" or "inception"
    num_features: int
    accuracy: float | None  # test accuracy on the dataset, None where it has none (Inception)
    resize: str  # how images reach the network's input size, recorded in metrics.json

    def extract(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(features (N, num_features), logits (N, K)) in one forward pass."""
        ...


class ClassifierExtractor(nn.Module):
    """The domain classifier as a FeatureExtractor: penultimate features and class logits."""

    name = "classifier"
    resize = "none"  # the classifier sees the dataset's own resolution

    def __init__(self, classifier: "DomainClassifier", accuracy: float | None = None) -> None:
        super().__init__()
        self.classifier = classifier.eval().requires_grad_(False)
        self.num_features = classifier.num_features
        self.num_classes = classifier.head.out_features
        self.accuracy = accuracy

    def train(self, mode: bool = True) -> "ClassifierExtractor":
        """Stay in eval mode: BatchNorm must use its running statistics."""
        return super().train(False)

    def extract(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(features, logits) of x."""
        features = self.classifier.features(x)
        return features, self.classifier.head(features)


def fingerprint(module: nn.Module) -> str:
    """sha256 (16 hex digits) of a module's state dict: names, shapes, dtypes and values."""
    h = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


class SharedPass(nn.Module):
    """Runs the extractor once per batch although FID, KID and IS each ask for it."""

    def __init__(self, extractor: FeatureExtractor) -> None:
        super().__init__()
        if not isinstance(extractor, nn.Module):
            raise TypeError(f"extractor must be an nn.Module, got {type(extractor).__name__}")
        self.extractor = extractor
        self._last: tuple[Tensor, tuple[Tensor, Tensor]] | None = None

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(features, logits) of x, reused when the same tensor object comes again."""
        # Holding x keeps its id from being reused, so `is` can't match a different batch.
        if self._last is None or self._last[0] is not x:
            self._last = (x, self.extractor.extract(x))
        return self._last[1]

    def clear(self) -> None:
        """Drop the cached batch."""
        self._last = None


class FeatureModule(nn.Module):
    """`feature=` module for FID/KID: float images in, (N, num_features) out, no casting."""

    def __init__(self, shared: SharedPass) -> None:
        super().__init__()
        self.shared = shared
        # Without this attribute torchmetrics probes the module with a uint8 299x299 image.
        self.num_features = shared.extractor.num_features

    def forward(self, x: Tensor) -> Tensor:
        """Features of x."""
        return self.shared(x)[0]


class LogitsModule(nn.Module):
    """`feature=` module for InceptionScore: float images in, (N, K) logits out."""

    def __init__(self, shared: SharedPass) -> None:
        super().__init__()
        self.shared = shared

    def forward(self, x: Tensor) -> Tensor:
        """Logits of x."""
        return self.shared(x)[1]
