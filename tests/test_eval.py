"""prunegen-eval, the Fréchet distance, precision/recall, the real-statistics cache and DDP scoring."""

import json

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.multiprocessing as mp
from hydra import compose, initialize_config_dir
from omegaconf import open_dict
from test_metrics import untimed
from torch import nn

from prunegen import CONFIG_DIR
from prunegen.data.digits import DigitsDataModule
from prunegen.evaluate import evaluate
from prunegen.metrics import (
    FID,
    ClassifierExtractor,
    ClassifierFeatures,
    DomainClassifier,
    GeneratorScorer,
    ScorerSpec,
    precision_recall,
    save_images,
)
from prunegen.metrics import cache as cache_module
from prunegen.run.checkpoint import load_model
from prunegen.train import train


class Features(nn.Identity):
    """Inputs are already features: lets the metrics run on given feature vectors."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features


class PoolModel:
    """The generative-model protocol over a fixed pool of images; the generator picks them."""

    latent_dim, num_classes = 8, 0

    def __init__(self, pool: torch.Tensor) -> None:
        self.generator, self.pool = nn.Linear(1, 1), pool

    def sample(self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None):
        return self.pool[torch.randint(len(self.pool), (n,), generator=generator)]


def _reference_fid(f1: np.ndarray, f2: np.ndarray) -> float:
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_frechet_distance_matches_scipy_sqrtm() -> None:
    g = torch.Generator().manual_seed(0)
    d = 32
    mix = torch.randn(d, d, generator=g) / d**0.5
    real = torch.randn(400, d, generator=g, dtype=torch.float64) @ mix.double()
    fake = 0.3 + 1.5 * torch.randn(300, d, generator=g, dtype=torch.float64) @ mix.double().T
    fid = FID(Features(d))
    for chunk in real.split(128):
        fid.update(chunk, real=True)
    for chunk in fake.split(128):
        fid.update(chunk, real=False)
    ours = fid.compute()
    assert ours.dtype == torch.float64
    assert float(ours) == pytest.approx(_reference_fid(real.numpy(), fake.numpy()), rel=1e-6)


def _pr(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    return precision_recall(real, fake, k=k)


def test_precision_recall_identical_disjoint_and_dropped_mode() -> None:
    g = torch.Generator().manual_seed(0)
    real = torch.randn(200, 16, generator=g)
    assert _pr(real, real.clone()) == (1.0, 1.0)
    precision, recall = _pr(real, torch.randn(200, 16, generator=g) + 20)
    assert precision < 0.02 and recall < 0.02
    # Two well-separated modes; the fakes cover only one: precision stays high, recall halves.
    modes = torch.cat([torch.randn(200, 16, generator=g), torch.randn(200, 16, generator=g) + 20])
    precision, recall = _pr(modes, torch.randn(400, 16, generator=g))
    assert precision > 0.7 and 0.35 < recall <= 0.5


@pytest.fixture(scope="module")
def digits16() -> DigitsDataModule:
    return DigitsDataModule(image_size=16)


def _spec(cache_dir, **settings) -> ScorerSpec:
    # a 1-epoch classifier: below the default accuracy threshold, lowered knowingly (its scores say valid: false)
    settings = {"min_extractor_accuracy": 0.0, **settings}
    return ScorerSpec(ClassifierFeatures(epochs=1), batch_size=256, cache_dir=cache_dir, **settings)


def test_real_statistics_cached_and_keyed(digits16, tmp_path, monkeypatch) -> None:
    first = _spec(tmp_path).build(digits16)
    assert not first.real_cached
    files = list((tmp_path / "real_stats").glob("*.pt"))
    assert len(files) == 1 and files[0].name.startswith("digits_train_16px_classifier_1439_")

    def fail(*args, **kwargs):
        raise AssertionError("real statistics recomputed although they are cached")

    monkeypatch.setattr(cache_module, "compute_real_stats", fail)
    second = _spec(tmp_path).build(digits16)
    assert second.real_cached
    assert torch.equal(second.real.features, first.real.features)
    model = PoolModel(digits16.split_tensors("test")[0])
    assert untimed(first.score(model, 100, 50)) == untimed(second.score(model, 100, 50))
    with pytest.raises(AssertionError, match="recomputed"):  # another key (fewer real images) misses
        _spec(tmp_path, num_real=500).build(digits16)


def _eval_cfg(tmp_path, *overrides: str):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("eval", overrides=["metrics.batch_size=32", *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "eval")
        cfg.paths.cache_dir = str(tmp_path.parent / "prunegen-cache")
    return cfg


def test_eval_pruned_checkpoint_over_seeds(make_cfg, tmp_path) -> None:
    cfg = make_cfg("pruning=unstructured", "pruning.start_epoch=0", "pruning.end_epoch=0", "pruning.final_sparsity=0.5")
    _, objects = train(cfg)
    run = tmp_path / "run"
    ckpt = run / "checkpoints" / "last.ckpt"

    model, _ = load_model(ckpt)  # masks restored, weights identical
    g1, g2 = (torch.Generator().manual_seed(3) for _ in range(2))
    assert torch.equal(model.sample(4, generator=g1), objects["model"].cpu().sample(4, generator=g2))

    record = evaluate(_eval_cfg(tmp_path, f"ckpt_path={ckpt}", "metrics.num_samples=64", "seeds=[0,1]"))
    on_disk = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert on_disk["status"] == "completed" and on_disk["metrics"] == record["metrics"]
    m = record["metrics"]
    assert [r["seed"] for r in m["per_seed"]] == [0, 1]
    assert m["fid"] == pytest.approx(np.mean([r["fid"] for r in m["per_seed"]]))
    assert m["over_seeds"]["fid"]["std"] > 0 and m["per_seed"][0]["fid"] != m["per_seed"][1]["fid"]
    assert 0 <= m["precision"] <= 1 and 0 <= m["recall"] <= 1
    assert m["extractor"] == "classifier" and m["extractor_accuracy"] > 0.5 and m["num_samples"] == 64
    assert {"torchmetrics_version", "torch_fidelity_version", "resize"} <= set(m)
    assert record["data"]["image_size"] == 16 and record["generator"]["sparsity"] > 0.3
    assert record["real_stats_cached"]  # the training run's evaluation cached them


def test_eval_conditional_vae_checkpoint(make_cfg, tmp_path) -> None:
    """The model protocol is all evaluation needs: a VAE (conditional here) scores like a GAN."""
    cfg = make_cfg(
        "model=cvae", "model.generator.ngf=8", "model.encoder.nef=8", "trainer.max_epochs=1",
        "trainer.limit_train_batches=2", "trainer.enable_progress_bar=false", "logger=none",
        "data.image_size=16", "metrics.num_samples=64", "metrics.batch_size=64", tiny=False,
    )
    train(cfg)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    record = evaluate(_eval_cfg(tmp_path, f"ckpt_path={ckpt}", "metrics.num_samples=40"))
    assert record["model"]["family"] == "vae" and record["metrics"]["num_samples"] == 40
    assert record["metrics"]["class_coverage"] >= 1 and record["generator"]["sparsity"] == 0


def test_eval_folder_against_dataset_and_folder(digits16, tmp_path) -> None:
    test_images = digits16.split_tensors("test")[0]
    save_images(test_images[:100], tmp_path / "fake")
    save_images(test_images[:100], tmp_path / "real")
    dataset = evaluate(_eval_cfg(tmp_path, f"fake_dir={tmp_path / 'fake'}", "data=digits", "data.image_size=16"))
    same = evaluate(
        _eval_cfg(tmp_path, f"fake_dir={tmp_path / 'fake'}", f"real_dir={tmp_path / 'real'}", "data=digits", "data.image_size=16")
    )
    assert dataset["metrics"]["num_samples"] == 100 and dataset["metrics"]["num_real"] == 1439
    assert same["metrics"]["num_real"] == 100
    assert abs(same["metrics"]["fid"]) < 1e-4 * dataset["metrics"]["fid"]
    assert (same["metrics"]["precision"], same["metrics"]["recall"]) == (1.0, 1.0)


def test_eval_needs_exactly_one_source(tmp_path) -> None:
    with pytest.raises(ValueError, match="exactly one of ckpt_path"):
        evaluate(_eval_cfg(tmp_path))
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["status"] == "failed"


def _scorer_and_model() -> tuple[GeneratorScorer, PoolModel]:
    torch.manual_seed(0)  # the same random classifier in every process
    classifier = DomainClassifier(widths=(8, 16)).eval()
    images = DigitsDataModule(image_size=16).split_tensors("train")[0]
    noise = torch.rand(100, 1, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    scorer = GeneratorScorer(ClassifierExtractor(classifier), images[:300], batch_size=20)
    return scorer, PoolModel(torch.cat([images[300:500], noise]))


def _ddp_worker(rank: int, world: int, store: str, out: str) -> None:
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        scorer, model = _scorer_and_model()
        calls = []
        extract = scorer.extractor.extract
        scorer.extractor.extract = lambda x: calls.append(len(x)) or extract(x)
        result = scorer.score(model, 120, seed=0)
        calls_120 = list(calls)
        one_batch = scorer.score(model, 20, seed=1)  # a single batch: rank 1 samples nothing
        torch.save({"result": result, "calls": calls_120, "one_batch": one_batch}, f"{out}.{rank}")
    finally:
        torch.distributed.destroy_process_group()


@pytest.fixture(scope="module")
def ddp_ranks(tmp_path_factory) -> list[dict]:
    """What each of 2 gloo ranks scored (and extracted): 120 samples in 6 batches, then 20 in 1 batch."""
    tmp = tmp_path_factory.mktemp("ddp")
    mp.spawn(_ddp_worker, args=(2, str(tmp / "store"), str(tmp / "out")), nprocs=2, join=True)
    return [torch.load(tmp / f"out.{r}", weights_only=False) for r in range(2)]


def test_ddp_ranks_score_their_share_and_agree(ddp_ranks) -> None:
    ranks = ddp_ranks
    scorer, model = _scorer_and_model()
    single = scorer.score(model, 120, seed=0)
    for r in ranks:
        assert r["calls"] == [20] * (15 + 3)  # all 300 real images, then 3 of the 6 fake batches
        assert untimed(r["result"]) == untimed(ranks[0]["result"])  # compute() gathered the same states everywhere
    gathered = ranks[0]["result"]
    assert gathered["fid"] == pytest.approx(single["fid"], rel=1e-6)  # the same 120 samples, however split
    assert (gathered["precision"], gathered["recall"]) == (single["precision"], single["recall"])
    assert gathered["class_coverage"] == pytest.approx(single["class_coverage"], rel=1e-9)
    assert gathered["num_samples"] == 120
    # The fake features are gathered in sample order and IS splits are fixed per sample: KID and IS agree too.
    for key in ("kid_mean", "kid_std", "is_mean", "is_std"):
        assert gathered[key] == pytest.approx(single[key], rel=1e-6), key


def test_ddp_scores_fewer_batches_than_ranks(ddp_ranks) -> None:
    """Any sample count on any number of ranks: a rank without a batch still takes part."""
    ranks = [r["one_batch"] for r in ddp_ranks]
    scorer, model = _scorer_and_model()
    single = scorer.score(model, 20, seed=1)
    assert untimed(ranks[0]) == untimed(ranks[1]) and ranks[0]["num_samples"] == 20
    for key in ("fid", "kid_mean", "kid_std", "is_mean", "is_std", "precision", "recall", "class_coverage"):
        assert ranks[0][key] == pytest.approx(single[key], rel=1e-6), key


def test_eval_scores_a_ddpm_at_fewer_sampler_steps(make_cfg, tmp_path) -> None:
    """sampler_steps= on prunegen-eval: fewer DDIM steps scored from the same checkpoint, recorded with the scores."""
    from test_diffusion import TINY_DDPM

    train(make_cfg(*TINY_DDPM, "metrics.num_samples=10", "metrics.batch_size=10", tiny=False))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    record = evaluate(_eval_cfg(tmp_path, f"ckpt_path={ckpt}", "metrics.num_samples=10", "sampler_steps=1"))
    assert record["model"]["family"] == "diffusion"
    assert record["metrics"]["sampler_steps"] == 1 and record["metrics"]["sampling_images_per_s"] > 0
    gan = make_cfg("trainer.max_epochs=1")
    gan.paths.output_dir = str(tmp_path / "gan")
    train(gan)
    with pytest.raises(ValueError, match="sampler_steps=2: .* not a diffusion model"):
        evaluate(_eval_cfg(tmp_path, f"ckpt_path={tmp_path / 'gan' / 'checkpoints' / 'last.ckpt'}", "sampler_steps=2"))
