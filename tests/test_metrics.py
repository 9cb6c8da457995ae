"""Metrics: domain classifier, torchmetrics FID/KID/IS through it, the evaluation callback."""

import math

import lightning as L
import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from prunegen.data.digits import DigitsDataModule
from prunegen.metrics import (
    ClassifierExtractor,
    EvaluationCallback,
    GeneratorScorer,
    class_coverage,
    load_or_train_classifier,
)
from prunegen.metrics import classifier as classifier_module
from prunegen.metrics.scores import RESULT_KEYS, TIMING_KEYS


class FakeModel:
    """The generative-model protocol, sampling from a fixed pool of images."""

    latent_dim = 8
    num_classes = 0

    def __init__(self, pool: torch.Tensor, random: bool = False) -> None:
        self.generator = nn.Linear(1, 1)
        self.pool, self.random, self.cursor = pool, random, 0

    def sample(self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.random:
            idx = torch.randint(len(self.pool), (n,), generator=generator)
        else:  # walk the pool in order, so num_samples == len(pool) gives exactly the pool
            idx = torch.arange(self.cursor, self.cursor + n) % len(self.pool)
            self.cursor += n
        return self.pool[idx]


@pytest.fixture(scope="module")
def datamodule() -> DigitsDataModule:
    return DigitsDataModule(image_size=32)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def trained(datamodule, cache_dir):
    """(classifier, test accuracy), trained once for the whole module."""
    return load_or_train_classifier(datamodule, cache_dir)


@pytest.fixture(scope="module")
def extractor(trained) -> ClassifierExtractor:
    return ClassifierExtractor(*trained)


@pytest.fixture(scope="module")
def noise() -> torch.Tensor:
    return torch.rand(500, 1, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1


def test_class_coverage_uniform_and_single() -> None:
    assert class_coverage(torch.arange(10).repeat(7), 10) == pytest.approx(10.0)
    assert class_coverage(torch.full((50,), 3), 10) == pytest.approx(1.0)
    logits = torch.eye(10)[torch.tensor([0, 0, 1, 1])]  # (N, K) logits: two classes, equal counts
    assert class_coverage(logits, 10) == pytest.approx(2.0)


def test_classifier_accurate_and_cached(trained, datamodule, cache_dir, monkeypatch) -> None:
    classifier, accuracy = trained
    assert accuracy >= 0.95
    assert len(list(cache_dir.glob("classifier_digits_32px_*.pt"))) == 1  # named by dataset, keyed by content

    def fail(*args, **kwargs):
        raise AssertionError("trained again although the cache exists")

    monkeypatch.setattr(classifier_module, "train_classifier", fail)
    again, cached_accuracy = load_or_train_classifier(datamodule, cache_dir)
    assert cached_accuracy == accuracy
    for (name, a), b in zip(classifier.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), name


def test_classifier_training_deterministic_and_rng_untouched(datamodule) -> None:
    images, labels = (t[:256] for t in datamodule.split_tensors("train"))
    arch = {"in_channels": 1, "num_classes": 10, "widths": (8, 16)}
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    a = classifier_module.train_classifier(arch, images, labels, epochs=1, seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)
    torch.manual_seed(999)  # a different global state must not change the result
    b = classifier_module.train_classifier(arch, images, labels, epochs=1, seed=5)
    for x, y in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(x, y)


def test_extractor_shapes_and_eval_mode(extractor) -> None:
    extractor.train()
    assert not extractor.classifier.training
    features, logits = extractor.extract(torch.zeros(3, 1, 32, 32))
    assert features.shape == (3, extractor.num_features) and logits.shape == (3, 10)


def test_fid_zero_for_same_set_and_large_for_noise(extractor, datamodule, noise) -> None:
    train, _ = datamodule.split_tensors("train")
    test, _ = datamodule.split_tensors("test")
    scorer = GeneratorScorer(extractor, train, batch_size=256)
    same = scorer.score(FakeModel(train), len(train))["fid"]
    held_out = scorer.score(FakeModel(test), len(test))["fid"]
    fid_noise = scorer.score(FakeModel(noise), len(noise))["fid"]
    shuffled = test.flatten(1)[:, torch.randperm(32 * 32)].view_as(test)
    fid_shuffled = scorer.score(FakeModel(shuffled), len(shuffled))["fid"]
    assert abs(same) < 1e-4 * fid_noise
    assert held_out < 0.05 * fid_noise
    assert held_out < 0.05 * fid_shuffled


def _reference_fid(f_real: np.ndarray, f_fake: np.ndarray) -> float:
    mu1, mu2 = f_real.mean(0), f_fake.mean(0)
    s1, s2 = np.cov(f_real, rowvar=False), np.cov(f_fake, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


@torch.no_grad()
def test_fid_matches_reference_formula(extractor, datamodule) -> None:
    train, _ = datamodule.split_tensors("train")
    test, _ = datamodule.split_tensors("test")
    ours = GeneratorScorer(extractor, train).score(FakeModel(test), len(test))["fid"]
    f_real = extractor.extract(train)[0].double().numpy()
    f_fake = extractor.extract(test)[0].double().numpy()
    assert ours == pytest.approx(_reference_fid(f_real, f_fake), rel=1e-3)


def test_real_statistics_computed_once(extractor, datamodule, monkeypatch) -> None:
    train, _ = datamodule.split_tensors("train")
    calls = []
    original = extractor.extract
    monkeypatch.setattr(extractor, "extract", lambda x: calls.append(len(x)) or original(x))
    scorer = GeneratorScorer(extractor, train, batch_size=500)
    model = FakeModel(datamodule.split_tensors("val")[0], random=True)
    torch.manual_seed(0)
    state = torch.random.get_rng_state()
    first = scorer.score(model, 300, batch_size=100)
    second = scorer.score(model, 300, batch_size=100)
    assert torch.equal(torch.random.get_rng_state(), state)
    real_batches = math.ceil(len(train) / 500)
    assert calls[:real_batches] == [500, 500, len(train) - 1000]
    assert calls[real_batches:] == [100] * 6  # one pass per fake batch, shared by FID, KID and IS
    assert untimed(first) == untimed(second)  # seeded samples, fixed real statistics
    assert first["sampling_images_per_s"] > 0 and first["sampler_steps"] is None  # a one-pass model
    assert first["kid_subset_size"] == 300
    assert tuple(first) == RESULT_KEYS
    assert first["extractor"] == "classifier" and first["num_samples"] == 300


def test_callback_scores_any_model_on_real_digits(trained, datamodule, cache_dir, noise) -> None:
    evaluation = EvaluationCallback(500, batch_size=250, cache_dir=cache_dir)
    real = evaluation.score(FakeModel(datamodule.split_tensors("test")[0], random=True), datamodule)
    fake = evaluation.score(FakeModel(noise, random=True))  # the scorer built for the first is reused
    assert real["class_coverage"] > 9 and real["is_mean"] > 2 * fake["is_mean"]
    assert real["fid"] < 0.05 * fake["fid"] and real["kid_mean"] < 0.05 * fake["kid_mean"]
    assert real["extractor_accuracy"] == trained[1]


class TinyGAN(L.LightningModule):
    """Just enough of a generative LightningModule for the callback."""

    def __init__(self) -> None:
        super().__init__()
        self.latent_dim, self.num_classes = 4, 0
        self.generator = nn.Sequential(nn.Linear(4, 32 * 32), nn.Tanh())

    def sample(self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        with torch.no_grad():
            z = torch.randn(n, 4, generator=generator).to(self.device)
            return self.generator(z).view(n, 1, 32, 32)

    def training_step(self, batch, batch_idx):
        x, _ = batch
        return (self.generator(torch.randn(len(x), 4)) - x.flatten(1)).square().mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


@pytest.mark.parametrize(("every_n_epochs", "max_epochs", "evaluated"), [(5, 2, [1]), (1, 2, [0, 1]), (2, 3, [1, 2])])
def test_callback_evaluates_every_n_and_last_epoch(trained, cache_dir, every_n_epochs, max_epochs, evaluated) -> None:
    callback = EvaluationCallback(100, every_n_epochs, batch_size=50, cache_dir=str(cache_dir))
    trainer = L.Trainer(
        max_epochs=max_epochs,
        limit_train_batches=2,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback],
    )
    model = TinyGAN()
    trainer.fit(model, datamodule=DigitsDataModule(image_size=32))
    assert [epoch for epoch, _ in callback.history] == evaluated
    assert trainer.callback_metrics["val/fid"].item() == pytest.approx(callback.results["fid"])
    assert {"val/kid", "val/is", "val/class_coverage"} <= set(trainer.callback_metrics)
    assert all(k.startswith("generator.") for k in model.state_dict())  # no metric state in the model


class BareGenerator(nn.Module):
    """TinyGAN's network behind the generator protocol alone (a dense teacher, an exported generator)."""

    latent_dim, num_classes = 4, 0

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z).view(len(z), 1, 32, 32)

    def spec(self) -> dict:
        return {}


def test_callback_record_from_state_and_score_of_a_bare_generator(trained, cache_dir) -> None:
    callback = EvaluationCallback(100, 1, batch_size=50, cache_dir=str(cache_dir))
    trainer = L.Trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=0, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[callback])
    model = TinyGAN()
    trainer.fit(model, datamodule=DigitsDataModule(image_size=32))
    assert callback.record(trainer, model) == {"metrics": callback.results}
    restored = EvaluationCallback(100, 1, batch_size=50, cache_dir=str(cache_dir))
    restored.load_state_dict(callback.state_dict())  # what ddp_spawn's parent and a resumed run get
    assert restored.record(trainer, model) == {"metrics": callback.results}
    assert restored.scorer is None  # read from the state, not scored again
    # The same settings score a bare network like the model that wraps it (same latents, same images).
    assert untimed(callback.score(BareGenerator(model.generator))) == untimed(callback.score(model)) == untimed(callback.results)


def untimed(result: dict) -> dict:
    """A score record without its timings (measured, so never equal twice)."""
    return {k: v for k, v in result.items() if k not in TIMING_KEYS}
