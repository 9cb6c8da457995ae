"""Score the generator with FID/KID/IS every few epochs, and the same scoring outside training."""

from pathlib import Path
from typing import Any

import lightning as L
import torch
from typing_extensions import override

from prunegen.metrics.classifier import load_or_train_classifier
from prunegen.metrics.extractors import ClassifierExtractor
from prunegen.metrics.scores import GeneratorScorer

LOG_KEYS = {"val/fid": "fid", "val/kid": "kid_mean", "val/is": "is_mean", "val/class_coverage": "class_coverage"}


def build_scorer(
    datamodule: Any,
    cache_dir: str | Path = ".cache",
    real_split: str = "train",
    batch_size: int = 500,
    classifier_epochs: int = 8,
    device: torch.device | str = "cpu",
) -> GeneratorScorer:
    """A scorer with the dataset's cached domain classifier and `real_split` as the real images."""
    classifier, accuracy = load_or_train_classifier(datamodule, cache_dir, epochs=classifier_epochs, device=device)
    real_images, _ = datamodule.split_tensors(real_split)
    return GeneratorScorer(ClassifierExtractor(classifier, accuracy), real_images, batch_size=batch_size)


def evaluate_model(
    model: Any,
    datamodule: Any,
    num_samples: int = 5000,
    batch_size: int = 500,
    cache_dir: str | Path = ".cache",
    real_split: str = "train",
    classifier_epochs: int = 8,
    seed: int = 0,
) -> dict[str, Any]:
    """Score a generative model (the `sample(n)` protocol) against `datamodule`'s `real_split`."""
    scorer = build_scorer(datamodule, cache_dir, real_split, batch_size, classifier_epochs)
    return scorer.score(model, num_samples, batch_size, seed=seed)


class EvaluationCallback(L.Callback):
    """Log `val/fid`, `val/kid`, `val/is`, `val/class_coverage` every `every_n_epochs` and at the last epoch."""

    def __init__(
        self,
        num_samples: int = 5000,
        every_n_epochs: int = 5,
        batch_size: int = 500,
        real_split: str = "train",
        cache_dir: str = ".cache",
        classifier_epochs: int = 8,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}")
        if num_samples < 10:
            raise ValueError(f"num_samples must be >= 10, got {num_samples}")
        self.num_samples = num_samples
        self.every_n_epochs = every_n_epochs
        self.batch_size = batch_size
        self.real_split = real_split
        self.cache_dir = cache_dir
        self.classifier_epochs = classifier_epochs
        self.seed = seed
        self.scorer: GeneratorScorer | None = None
        self.results: dict[str, Any] | None = None
        self.history: list[tuple[int, dict[str, Any]]] = []

    @property
    @override
    def state_key(self) -> str:
        return self._generate_state_key(num_samples=self.num_samples, real_split=self.real_split)

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict["history"])
        self.results = self.history[-1][1] if self.history else None

    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit" or self.scorer is not None:
            return
        if trainer.datamodule is None:
            raise ValueError("EvaluationCallback needs trainer.fit(..., datamodule=...) to find the real images")
        self.scorer = build_scorer(
            trainer.datamodule,
            self.cache_dir,
            self.real_split,
            self.batch_size,
            self.classifier_epochs,
            device=trainer.strategy.root_device,  # the model is not moved there until after setup
        )

    def _should_evaluate(self, trainer: L.Trainer) -> bool:
        epoch = trainer.current_epoch
        last_epoch = trainer.max_epochs is not None and trainer.max_epochs > 0 and epoch + 1 >= trainer.max_epochs
        last_step = trainer.max_steps > 0 and trainer.global_step >= trainer.max_steps
        return (epoch + 1) % self.every_n_epochs == 0 or last_epoch or last_step

    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.scorer is None or not self._should_evaluate(trainer):
            return
        # Each rank scores the same seeded samples, so the logged values agree without a sync.
        self.results = self.scorer.score(pl_module, self.num_samples, self.batch_size, seed=self.seed)
        self.history.append((trainer.current_epoch, self.results))
        for key, name in LOG_KEYS.items():
            pl_module.log(key, self.results[name], on_step=False, on_epoch=True)
