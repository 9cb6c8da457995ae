"""Scoring caches are keyed by the data's content: two image folders never share a classifier or real statistics."""

import numpy as np
import pytest
from PIL import Image

from prunegen.data import DigitsDataModule, ImageFolderDataModule
from prunegen.metrics import ClassifierFeatures, ScorerSpec
from prunegen.metrics import classifier as classifier_module


def write_folder(root, seed: int, per_class: int = 24) -> None:
    """Two classes (bright left half / bright right half) of noisy 8x8 grey PNGs; `seed` picks the noise."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(("left", "right")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            img = rng.integers(0, 96, (8, 8), dtype=np.uint8)
            img[:, 4 * c : 4 * c + 4] += 150
            Image.fromarray(img).save(root / name / f"{i:03d}.png")


def folder_data(root) -> ImageFolderDataModule:
    return ImageFolderDataModule(root=str(root), image_size=8, channels=1, test_fraction=0.25)


def spec(cache_dir) -> ScorerSpec:
    # tiny folders and a 1-epoch classifier: the extractor thresholds lowered knowingly
    return ScorerSpec(ClassifierFeatures(epochs=1), num_samples=10, batch_size=16, cache_dir=cache_dir,
                      min_extractor_accuracy=0.0, min_extractor_images=0)


def test_two_folders_get_two_classifiers_and_same_data_hits(tmp_path, monkeypatch) -> None:
    write_folder(tmp_path / "a", seed=0)
    write_folder(tmp_path / "b", seed=1)
    cache = tmp_path / "cache"
    a, b = spec(cache).build(folder_data(tmp_path / "a")), spec(cache).build(folder_data(tmp_path / "b"))
    assert folder_data(tmp_path / "a").num_classes == folder_data(tmp_path / "b").num_classes == 2
    assert a.weights != b.weights  # each folder's FID lives in its own classifier's feature space
    assert len(list(cache.glob("classifier_image_folder_8px_*.pt"))) == 2
    assert len(list((cache / "real_stats").glob("image-folder_train_8px_classifier_*.pt"))) == 2
    assert not a.real_cached and not b.real_cached

    def fail(*args, **kwargs):
        raise AssertionError("trained again although the same data has a cached classifier")

    with monkeypatch.context() as m:
        m.setattr(classifier_module, "train_classifier", fail)
        again = spec(cache).build(folder_data(tmp_path / "a"))  # a new datamodule on the same files
    assert again.weights == a.weights and again.real_cached

    # Another image in the same folder (same names, same class count): a new classifier.
    Image.fromarray(np.full((8, 8), 7, dtype=np.uint8)).save(tmp_path / "a" / "left" / "000.png")
    changed = spec(cache).build(folder_data(tmp_path / "a"))
    assert changed.weights != a.weights and not changed.real_cached
    assert len(list(cache.glob("classifier_image_folder_8px_*.pt"))) == 3


def test_fingerprint_follows_content_not_name() -> None:
    base = DigitsDataModule(image_size=8)
    assert base.fingerprint() == DigitsDataModule(image_size=8).fingerprint()
    assert base.fingerprint() != DigitsDataModule(image_size=8, split_seed=1).fingerprint()  # other splits
    assert base.fingerprint() != DigitsDataModule(image_size=16).fingerprint()


@pytest.mark.parametrize("settings", [{"num_samples": 9}, {"pr_k": 0}, {"max_features": 3}, {"batch_size": 0}])
def test_spec_rejects_bad_settings(settings, tmp_path) -> None:
    with pytest.raises(ValueError, match="metrics\\."):
        ScorerSpec(ClassifierFeatures(), **{"cache_dir": tmp_path, **settings})
