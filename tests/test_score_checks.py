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
