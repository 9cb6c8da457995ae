"""The Inception extractor offline: a random-init InceptionV3 file, checked against torch-fidelity's own FID.

Inception at 299 px runs at a few images/s on a CPU: one weights file per session, a few dozen images.
"""

import json

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import InstantiationException
from omegaconf import open_dict
from torch_fidelity import calculate_metrics

from prunegen import CONFIG_DIR
from prunegen.data.digits import DigitsDataModule
from prunegen.evaluate import evaluate
from prunegen.metrics import InceptionExtractor, random_inception_weights, resolve_inception_weights, save_images
from prunegen.metrics.inception import INCEPTION_FILE
from prunegen.train import train


def _shift(x: torch.Tensor, pixels: int) -> torch.Tensor:
    return torch.roll(x, shifts=(pixels, pixels), dims=(2, 3))


@pytest.fixture(scope="session")
def digits() -> torch.Tensor:
    return DigitsDataModule(image_size=32).split_tensors("test")[0]


@pytest.fixture(scope="session")
def weights(tmp_path_factory, digits) -> str:
    """A random-init InceptionV3 whose BatchNorm statistics come from digits and shifted digits."""
    calibration = torch.cat([digits[-6:], _shift(digits[-12:-6], 4)])
    return str(random_inception_weights(tmp_path_factory.mktemp("inception") / "random.pth", [calibration]))


@pytest.fixture(scope="session")
def folders(tmp_path_factory, digits):
    """16 digits and 16 other digits shifted by 4 px, as PNG folders."""
    root = tmp_path_factory.mktemp("folders")
    save_images(digits[:16], root / "real")
    save_images(_shift(digits[16:32], 4), root / "fake")
    return root / "real", root / "fake"


def test_missing_weights_fail_before_training(make_cfg, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # an empty torch-fidelity cache
    with pytest.raises(FileNotFoundError) as err:
        resolve_inception_weights(None)
    folder = str(tmp_path / "torch_home" / "hub" / "checkpoints")
    for part in (INCEPTION_FILE, folder, "metrics.inception_weights"):
        assert part in str(err.value)
    with pytest.raises(InstantiationException, match=f"{INCEPTION_FILE}.*metrics.inception_weights"):
        train(make_cfg("metrics=inception"))
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["status"] == "failed" and folder in record["error"]
    assert not (tmp_path / "run" / "checkpoints").exists()  # no training step ran
    with pytest.raises(FileNotFoundError, match="metrics.inception_weights=/nowhere/w.pth does not exist"):
        resolve_inception_weights("/nowhere/w.pth")


def test_grayscale_is_repeated_to_rgb(weights, digits) -> None:
    extractor = InceptionExtractor(weights)
    with torch.no_grad():
        gray = extractor.extract(digits[:2])
        rgb = extractor.extract(digits[:2].expand(-1, 3, -1, -1))
    assert all(torch.equal(a, b) for a, b in zip(gray, rgb))
    assert gray[0].shape == (2, 2048) and gray[1].shape == (2, 1008)


def _eval_cfg(tmp_path, *overrides: str):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("eval", overrides=["metrics=inception", "metrics.batch_size=12", *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "eval")
        cfg.paths.cache_dir = str(tmp_path / "cache")
    return cfg


def test_folder_fid_matches_torch_fidelity(weights, folders, tmp_path) -> None:
    real, fake = folders
    cfg = _eval_cfg(tmp_path, f"metrics.inception_weights={weights}", f"fake_dir={fake}", f"real_dir={real}")
    ours = evaluate(cfg)["metrics"]
    theirs = calculate_metrics(
        input1=str(fake),
        input2=str(real),
        fid=True,
        feature_extractor_weights_path=weights,
        cuda=False,
        save_cpu_ram=True,  # no DataLoader workers
        cache=False,
        verbose=False,
    )["frechet_inception_distance"]
    assert ours["extractor"] == "inception" and ours["num_samples"] == ours["num_real"] == 16
    assert theirs > 1.0  # the random network still separates digits from shifted digits
    assert ours["fid"] == pytest.approx(theirs, rel=1e-3)
    assert "tf1" in ours["resize"] and ours["torch_fidelity_version"]
    assert ours["class_coverage"] is None  # folders vs folders: no labelled dataset behind them


def test_inception_scores_a_training_run(make_cfg, tmp_path, weights) -> None:
    """metrics=inception through the config key: FID, KID, IS, PR from one network; class coverage from the classifier."""
    record, objects = train(
        make_cfg(
            "metrics=inception",
            f"metrics.inception_weights={weights}",
            "metrics.num_samples=20",
            "metrics.batch_size=10",
            "metrics.num_real=20",
        )
    )
    m = record["metrics"]
    assert m["extractor"] == "inception" and m["extractor_accuracy"] is None
    assert m["fid"] > 0 and m["num_samples"] == 20 and m["num_real"] == 20
    assert m["class_coverage"] >= 1 and m["class_coverage_accuracy"] > 0.5  # the domain classifier's
    assert m["torchmetrics_version"] and m["torch_fidelity_version"] and m["resize"]
    assert all(k.startswith(("generator.", "discriminator.")) for k in objects["model"].state_dict())
