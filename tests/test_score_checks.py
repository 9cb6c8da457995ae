"""Scores that refuse to measure what they can't: caches that fail early."""

import json

import pytest

from prunegen.fileio import check_writable
from prunegen.train import train


def test_an_unwritable_cache_folder_fails_before_any_work_naming_it_and_its_setting(make_cfg, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    cfg = make_cfg()
    cfg.paths.cache_dir = f"{blocker}/cache"
    with pytest.raises(PermissionError, match=r"not-a-folder/cache cannot be written.*paths\.cache_dir.*PRUNEGEN_CACHE"):
        train(cfg)
    assert not (tmp_path / "run").exists()  # before the run folder, the classifier or any training


def test_check_writable_makes_the_folder_and_leaves_nothing_else(tmp_path):
    check_writable(tmp_path / "a" / "b", "paths.cache_dir")
    assert (tmp_path / "a" / "b").is_dir() and not list((tmp_path / "a" / "b").iterdir())


def _png(path, value: int) -> None:
    import numpy as np
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, dtype=np.uint8)).save(path)


def test_an_empty_class_folder_is_refused_before_training_naming_it(make_cfg, tmp_path):
    for i in range(12):
        _png(tmp_path / "imgs" / "a" / f"{i}.png", 0)
        _png(tmp_path / "imgs" / "c" / f"{i}.png", 255)
    (tmp_path / "imgs" / "b").mkdir()  # would silently turn class c into label 1
    cfg = make_cfg("data=image_folder", f"data.root={tmp_path / 'imgs'}")
    with pytest.raises(ValueError, match=r"imgs/b has no images.*every sub-folder is a class"):
        train(cfg)
    assert not (tmp_path / "run").exists()


def test_too_few_images_per_class_are_refused_with_the_numbers_or_allowed_with_a_warning(tmp_path, caplog):
    import logging

    from prunegen.data.checks import check_image_folder

    caplog.set_level(logging.INFO, "prunegen")

    for i in range(12):
        _png(tmp_path / "a" / f"{i}.png", 0)
    for i in range(3):
        _png(tmp_path / "b" / f"{i}.png", 255)
    data = {"_target_": "prunegen.data.ImageFolderDataModule", "root": str(tmp_path), "test_fraction": 0.1}
    with pytest.raises(ValueError, match=r"1 of 2 classes have fewer than 10 images \(b: 3\).*data.allow_small_classes"):
        check_image_folder(data)
    check_image_folder({**data, "allow_small_classes": True})
    assert "b: 3" in caplog.text and "going on" in caplog.text
    assert "15 images, 2 classes (a: 12, b: 3); splits: train 14, val 0, test 1" in caplog.text


def _noise_classes(root, n: int = 160) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("a", "b"):  # two classes drawn from the same noise: no classifier can tell them apart
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(root / cls / f"{i}.png")


def test_a_classifier_that_cannot_tell_the_classes_apart_is_refused_or_recorded_invalid(make_cfg, tmp_path):
    from prunegen.reporting.table import table_rows

    _noise_classes(tmp_path / "noise")
    data = ["data=image_folder", f"data.root={tmp_path / 'noise'}", "data.channels=1", "data.test_fraction=0.4",
            "metrics.extractor.epochs=2"]
    with pytest.raises(ValueError, match=r"accuracy on 128 held-out images \(2 classes: chance is 50%\).*min_extractor_accuracy=0.8"):
        train(make_cfg(*data))
    assert not (tmp_path / "run" / "checkpoints").exists()  # stopped before training
    record, _ = train(make_cfg(*data, "metrics.min_extractor_accuracy=0"))
    assert record["metrics"]["valid"] is False and record["metrics"]["extractor_accuracy"] < 0.8
    row = table_rows(tmp_path / "run")[0][0]
    assert row["invalid"]
    from prunegen.reporting.render import status_cell

    assert "valid: false" in status_cell(row)


def test_resume_never_moves_the_earlier_run_aside_and_starts_over(make_cfg, tmp_path):
    first, _ = train(make_cfg())
    other, _ = train(make_cfg("seed=1", "resume=never"))
    assert first["status"] == other["status"] == "completed" and other["run"]["seed"] == 1
    moved = list((tmp_path / "run" / "previous").iterdir())
    assert len(moved) == 1 and json.loads((moved[0] / "metrics.json").read_text())["run"]["seed"] == 0
    assert (moved[0] / "checkpoints" / "last.ckpt").is_file() and (moved[0] / ".hydra" / "config.yaml").is_file()
    assert len(json.loads((tmp_path / "run" / "metrics.json").read_text())["attempts"]) == 1


def test_every_score_carries_the_real_vs_real_floor_and_a_set_against_itself_is_zero(make_cfg, tmp_path):
    import torch

    from prunegen.data import DigitsDataModule
    from prunegen.metrics import ScorerSpec
    from prunegen.metrics.extractors import ClassifierFeatures
    from prunegen.metrics.floor import held_out_images

    record, objects = train(make_cfg())
    m = record["metrics"]
    assert {"fid_floor", "kid_floor", "is_floor", "precision_floor", "recall_floor", "classes_floor"} <= set(m)
    assert 0 < m["fid_floor"] < m["fid"] and m["floor_splits"] == ["val", "test"] and m["floor_num_images"] > 50
    from prunegen.reporting.table import table_rows

    assert m["num_samples"] == m["floor_num_images"] and m["fid_at_floor_n"] == m["fid"]  # as many held-out images as samples
    assert table_rows(tmp_path / "run")[0][0]["FID / floor"] == pytest.approx(m["fid_at_floor_n"] / m["fid_floor"])
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["metrics"]["fid_floor"] == m["fid_floor"]
    cached = list((tmp_path.parent / "prunegen-cache" / "real_stats").glob("floor_*.json"))
    assert cached  # computed once, beside the real statistics

    data = DigitsDataModule(image_size=16)  # the floor of a set against itself: its held-out images as the real ones
    images, _ = held_out_images(data, "train")
    scorer = ScorerSpec(ClassifierFeatures(), num_samples=10, batch_size=256, real_split="test",
                        cache_dir=tmp_path.parent / "prunegen-cache").build(data)
    test = data.split_tensors("test")[0]
    same = scorer.score_images([test], len(test))
    assert abs(same["fid"]) < 1e-3 and same["precision"] == same["recall"] == 1.0
    assert torch.equal(images[-len(test):], test)


@pytest.mark.parametrize("mirror", [False, True])
def test_the_floor_and_a_generator_of_the_held_out_images_agree_at_the_floors_sample_size(tmp_path, mirror):
    """`fid_at_floor_n` averages FID over disjoint floor-sized sets of samples: a "generator" that draws the
    held-out images themselves, over and over, gets the floor's own FID there; one whose second pass is their
    mirror images gets more."""
    import torch

    from prunegen.data import DigitsDataModule
    from prunegen.metrics import ScorerSpec
    from prunegen.metrics.extractors import ClassifierFeatures
    from prunegen.metrics.floor import held_out_images

    data = DigitsDataModule(image_size=16)
    held, _ = held_out_images(data, "train")

    class HeldOut(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.generator, self.next = torch.nn.Linear(1, 1), 0

        def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
            index = torch.arange(self.next, self.next + n)
            self.next += n
            images = held[index % len(held)]
            flip = (index >= len(held)) & mirror
            return torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)

    num_samples = 2 * len(held) + 10  # two floor-sized sets and a few more samples
    scorer = ScorerSpec(ClassifierFeatures(), num_samples=num_samples, batch_size=100,
                        cache_dir=tmp_path / "cache").build(data)
    result = scorer.score(HeldOut(), num_samples)
    assert result["floor_num_images"] == len(held)
    if mirror:
        assert result["fid_at_floor_n"] > 2 * result["fid_floor"]
    else:
        assert result["fid_at_floor_n"] == pytest.approx(result["fid_floor"], rel=1e-6)
