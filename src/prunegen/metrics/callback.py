"""Score the generator every few epochs, and the same scoring outside training."""

from pathlib import Path
from typing import Any

import lightning as L
import torch
from typing_extensions import override

from prunegen.metrics.cache import load_or_compute_real_stats, real_stats_key
from prunegen.metrics.classifier import load_or_train_classifier
from prunegen.metrics.extractors import ClassifierExtractor, FeatureExtractor, fingerprint
from prunegen.metrics.images import ImageSource, from_datamodule
from prunegen.metrics.inception import InceptionExtractor, resolve_inception_weights
from prunegen.metrics.scores import GeneratorScorer

EXTRACTORS = ("classifier", "inception")
LOG_KEYS = {
    "val/fid": "fid",
    "val/kid": "kid_mean",
    "val/is": "is_mean",
    "val/precision": "precision",
    "val/recall": "recall",
    "val/class_coverage": "class_coverage",
}


def check_extractor(extractor: str, inception_weights: str | None = None) -> None:
    """Raise before any work if the extractor is unknown or Inception's weights are missing."""
    if extractor not in EXTRACTORS:
        raise ValueError(f"metrics.extractor must be one of {EXTRACTORS}, got {extractor!r}")
    if extractor == "inception":
        resolve_inception_weights(inception_weights)


def domain_classifier(
    datamodule: Any, cache_dir: str | Path, epochs: int = 8, device: torch.device | str = "cpu"
) -> ClassifierExtractor | None:
    """The dataset's cached domain classifier (trained on first use); None for unlabelled data."""
    if not getattr(datamodule, "num_classes", 0) or not hasattr(datamodule, "split_tensors"):
        return None
    classifier, accuracy = load_or_train_classifier(datamodule, cache_dir, epochs=epochs, device=device)
    return ClassifierExtractor(classifier, accuracy)


def build_extractor(
    extractor: str,
    datamodule: Any = None,
    cache_dir: str | Path = ".cache",
    inception_weights: str | None = None,
    classifier_epochs: int = 8,
    device: torch.device | str = "cpu",
) -> tuple[FeatureExtractor, ClassifierExtractor | None]:
    """(the extractor, the domain classifier behind class coverage or None)."""
    check_extractor(extractor, inception_weights)
    coverage = domain_classifier(datamodule, cache_dir, classifier_epochs, device) if datamodule is not None else None
    if extractor == "classifier":
        if coverage is None:
            raise ValueError("metrics.extractor=classifier needs a labelled dataset to train on: set data=NAME")
        return coverage, coverage
    return InceptionExtractor(inception_weights).to(device), coverage


def scorer_for(
    extractor: FeatureExtractor,
    real: ImageSource,
    cache_dir: str | Path | None,
    batch_size: int = 500,
    device: torch.device | str = "cpu",
    coverage: ClassifierExtractor | None = None,
    **kwargs: Any,
) -> GeneratorScorer:
    """A scorer whose real statistics come from the cache, or are computed (and cached) now."""
    weights = fingerprint(extractor)
    key = real_stats_key(real, extractor, weights)
    stats, cached = load_or_compute_real_stats(extractor, real.batches(batch_size), key, cache_dir, device)
    scorer = GeneratorScorer(extractor, stats, batch_size=batch_size, coverage=coverage, weights=weights, **kwargs)
    scorer.real_cached = cached
    return scorer


def build_scorer(
    datamodule: Any,
    cache_dir: str | Path = ".cache",
    real_split: str = "train",
    batch_size: int = 500,
    classifier_epochs: int = 8,
    device: torch.device | str = "cpu",
    extractor: str = "classifier",
    inception_weights: str | None = None,
    num_real: int | None = None,
    pr_k: int = 3,
) -> GeneratorScorer:
    """A scorer with `extractor` and the first `num_real` (None: all) images of `real_split` as the real images."""
    ext, coverage = build_extractor(extractor, datamodule, cache_dir, inception_weights, classifier_epochs, device)
    real = from_datamodule(datamodule, real_split, num_real)
    return scorer_for(ext, real, cache_dir, batch_size, device, coverage, pr_k=pr_k)


def evaluate_model(
    model: Any,
    datamodule: Any,
    num_samples: int = 5000,
    batch_size: int = 500,
    cache_dir: str | Path = ".cache",
    real_split: str = "train",
    classifier_epochs: int = 8,
    seed: int = 0,
    **kwargs: Any,
) -> dict[str, Any]:
    """Score a generative model (the `sample(n, generator=)` protocol) against `datamodule`'s `real_split`."""
    scorer = build_scorer(datamodule, cache_dir, real_split, batch_size, classifier_epochs, **kwargs)
    return scorer.score(model, num_samples, batch_size, seed=seed)


class EvaluationCallback(L.Callback):
    """Log `val/fid`, `val/kid`, `val/is`, `val/precision`, `val/recall`, `val/class_coverage`.

    Scores every `every_n_epochs` (None: only at the end) and after the last epoch. Every rank scores
    its share of the samples and gets the same, gathered, results.
    """

    def __init__(
        self,
        num_samples: int = 5000,
        every_n_epochs: int | None = 5,
        batch_size: int = 500,
        real_split: str = "train",
        cache_dir: str = ".cache",
        classifier_epochs: int = 8,
        seed: int = 0,
        extractor: str = "classifier",
        inception_weights: str | None = None,
        num_real: int | None = None,
        pr_k: int = 3,
    ) -> None:
        super().__init__()
        if every_n_epochs is not None and every_n_epochs < 1:
            raise ValueError(f"metrics.every_n_epochs must be >= 1 or null, got {every_n_epochs}")
        if num_samples < 10:
            raise ValueError(f"metrics.num_samples must be >= 10, got {num_samples}")
        if pr_k < 1:
            raise ValueError(f"metrics.pr_k must be >= 1, got {pr_k}")
        check_extractor(extractor, inception_weights)  # missing Inception weights fail here, before training
        self.num_samples = num_samples
        self.every_n_epochs = every_n_epochs
        self.batch_size = batch_size
        self.real_split = real_split
        self.cache_dir = cache_dir
        self.classifier_epochs = classifier_epochs
        self.seed = seed
        self.extractor = extractor
        self.inception_weights = inception_weights
        self.num_real = num_real
        self.pr_k = pr_k
        self.scorer: GeneratorScorer | None = None
        self.results: dict[str, Any] | None = None
        self.history: list[tuple[int, dict[str, Any]]] = []

    @property
    @override
    def state_key(self) -> str:
        return self._generate_state_key(
            num_samples=self.num_samples, real_split=self.real_split, extractor=self.extractor
        )

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict["history"])
        self.results = self.history[-1][1] if self.history else None

    def build(self, datamodule: Any, device: torch.device | str) -> GeneratorScorer:
        """The scorer of this callback's settings for `datamodule` (real statistics from the cache when there)."""
        return build_scorer(
            datamodule,
            self.cache_dir,
            self.real_split,
            self.batch_size,
            self.classifier_epochs,
            device=device,
            extractor=self.extractor,
            inception_weights=self.inception_weights,
            num_real=self.num_real,
            pr_k=self.pr_k,
        )

    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit" or self.scorer is not None:
            return
        if trainer.datamodule is None:
            raise ValueError("EvaluationCallback needs trainer.fit(..., datamodule=...) to find the real images")
        # Rank 0 trains the classifier and computes the real statistics; the others then read the cache.
        if trainer.is_global_zero:
            self.scorer = self.build(trainer.datamodule, trainer.strategy.root_device)
        trainer.strategy.barrier("prunegen_real_stats")
        if not trainer.is_global_zero:
            self.scorer = self.build(trainer.datamodule, trainer.strategy.root_device)

    def _should_evaluate(self, trainer: L.Trainer) -> bool:
        epoch = trainer.current_epoch
        last_epoch = trainer.max_epochs is not None and trainer.max_epochs > 0 and epoch + 1 >= trainer.max_epochs
        last_step = trainer.max_steps > 0 and trainer.global_step >= trainer.max_steps
        every = self.every_n_epochs is not None and (epoch + 1) % self.every_n_epochs == 0
        return every or last_epoch or last_step

    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.scorer is None or not self._should_evaluate(trainer):
            return
        # Every rank samples its share and calls compute(): the metrics gather the fake-image states.
        self.results = self.scorer.score(pl_module, self.num_samples, self.batch_size, seed=self.seed)
        self.history.append((trainer.current_epoch, self.results))
        for key, name in LOG_KEYS.items():
            if self.results.get(name) is not None:
                pl_module.log(key, self.results[name], on_step=False, on_epoch=True)
