"""Scores that refuse to measure what they can't: caches that fail early."""

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
