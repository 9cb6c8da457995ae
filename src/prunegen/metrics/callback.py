"""Score the generator every few epochs and after the last one, with the settings of `configs/metrics/`."""

from pathlib import Path
from typing import Any

import lightning as L
from torch import nn
from typing_extensions import override

from prunegen.data.protocol import ImageData
from prunegen.generator import GeneratorSampler
from prunegen.metrics.checks import MIN_ACCURACY, MIN_IMAGES
from prunegen.metrics.extractors import FeatureSpec
from prunegen.metrics.scores import GeneratorScorer, Sampleable, model_device
from prunegen.metrics.spec import ScorerSpec, extractor_spec

LOG_KEYS = {
    "val/fid": "fid",
    "val/kid": "kid_mean",
    "val/is": "is_mean",
    "val/precision": "precision",
    "val/recall": "recall",
    "val/class_coverage": "class_coverage",
}


class EvaluationCallback(L.Callback):
    """Log `val/fid`, `val/kid`, `val/is`, `val/precision`, `val/recall`, `val/class_coverage`.

    Scores every `every_n_epochs` (None: only at the end) and after the last epoch; the scores live in
    `history` (the callback's state, so checkpoints carry them). Every rank scores its share of the
    samples and gets the same, gathered, results. `record` gives the last scores for metrics.json;
    `score` scores any generator (a dense teacher, say) with the same settings.

    Args:
        extractor: a `metrics/extractor/*.yaml` node built by Hydra, or the name of one.
        inception_weights: read by the inception node (`${..inception_weights}`).
        The other arguments are `ScorerSpec`'s.
    """

    def __init__(
        self,
        num_samples: int = 5000,
        every_n_epochs: int | None = 5,
        batch_size: int = 500,
        real_split: str = "train",
        cache_dir: str | Path | None = ".cache",
        extractor: FeatureSpec | str = "classifier",
        inception_weights: str | None = None,
        num_real: int | None = None,
        pr_k: int = 3,
        max_features: int | None = 10000,
        seed: int = 0,
        min_extractor_accuracy: float = MIN_ACCURACY,
        min_extractor_images: int = MIN_IMAGES,
    ) -> None:
        super().__init__()
        if every_n_epochs is not None and every_n_epochs < 1:
            raise ValueError(f"metrics.every_n_epochs must be >= 1 or null, got {every_n_epochs}")
        self.every_n_epochs = every_n_epochs
        self.spec = ScorerSpec(
            extractor_spec(extractor, inception_weights),  # a missing Inception file fails here, before training
            num_samples, batch_size, real_split, num_real, pr_k, max_features, cache_dir, seed,
            min_extractor_accuracy, min_extractor_images,
        )
        self.scorer: GeneratorScorer | None = None
        self.results: dict[str, Any] | None = None  # the last scores (history's last entry)
        self.history: list[tuple[int, dict[str, Any]]] = []
        self._datamodule: ImageData | None = None

    # The settings train.py reads (the scorer's budget): the spec's.
    @property
    def num_samples(self) -> int:
        return self.spec.num_samples

    @property
    def batch_size(self) -> int:
        return self.spec.batch_size

    @property
    def seed(self) -> int:
        return self.spec.seed

    @property
    @override
    def state_key(self) -> str:
        return self._generate_state_key(
            num_samples=self.spec.num_samples, real_split=self.spec.real_split, extractor=self.spec.extractor.name
        )

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict["history"])
        self.results = self.history[-1][1] if self.history else None

    def record(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        """This callback's part of metrics.json: the last scores (kept in the state, so ddp_spawn gets them).
        A run that ended without scoring (stopped early by time or a callback) is scored now."""
        if self.results is None and self._datamodule_of(trainer) is not None:
            self._append(trainer.current_epoch, self.score(pl_module, self._datamodule_of(trainer)))
        return {"metrics": dict(self.results or {})}

    def score(
        self, generator: Sampleable | nn.Module, datamodule: ImageData | None = None, seed: int | None = None
    ) -> dict[str, Any]:
        """Scores of any generator with this callback's settings: a model with `sample` (a LightningModule)
        or a bare generator network (the dense teacher, a compact generator). `datamodule` is needed
        only before `setup` has run here (e.g. in the parent process of ddp_spawn)."""
        model = generator if isinstance(generator, Sampleable) else GeneratorSampler(generator)
        if self.scorer is None:
            datamodule = datamodule or self._datamodule
            if datamodule is None:
                raise ValueError("EvaluationCallback.score needs the datamodule of the real images before setup")
            self.scorer = self.spec.build(datamodule, model_device(model))
        seed = self.spec.seed if seed is None else seed
        return self.scorer.score(model, self.spec.num_samples, self.spec.batch_size, seed=seed)

    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit" or self.scorer is not None:
            return
        if trainer.datamodule is None:
            raise ValueError("EvaluationCallback needs trainer.fit(..., datamodule=...) to find the real images")
        self._datamodule = trainer.datamodule
        # Rank 0 trains the classifier and computes the real statistics; the others then read the cache.
        if trainer.is_global_zero:
            self.scorer = self.spec.build(trainer.datamodule, trainer.strategy.root_device)
        trainer.strategy.barrier("prunegen_real_stats")
        if not trainer.is_global_zero:
            self.scorer = self.spec.build(trainer.datamodule, trainer.strategy.root_device)

    def _datamodule_of(self, trainer: L.Trainer) -> ImageData | None:
        return self._datamodule or trainer.datamodule

    def _should_evaluate(self, trainer: L.Trainer) -> bool:
        epoch = trainer.current_epoch
        last_epoch = trainer.max_epochs is not None and trainer.max_epochs > 0 and epoch + 1 >= trainer.max_epochs
        last_step = trainer.max_steps > 0 and trainer.global_step >= trainer.max_steps
        every = self.every_n_epochs is not None and (epoch + 1) % self.every_n_epochs == 0
        return every or last_epoch or last_step

    def _append(self, epoch: int, results: dict[str, Any]) -> None:
        self.results = results
        self.history.append((epoch, results))

    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.scorer is None or not self._should_evaluate(trainer):
            return
        # Every rank samples its share and calls compute(): the metrics gather the fake-image states.
        self._append(trainer.current_epoch, self.score(pl_module))
        for key, name in LOG_KEYS.items():  # the same value on every rank: the sync averages equal numbers
            if self.results.get(name) is not None:
                pl_module.log(key, self.results[name], on_step=False, on_epoch=True, sync_dist=True)
