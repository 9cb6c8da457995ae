"""Checkpoints that can't lose a run: two kept, written atomically, a truncated newest one skipped."""

import json
import os

import pytest
import torch

from prunegen.run.checkpoint import NotACheckpoint, load_weights, newest_loadable
from prunegen.run.lifecycle import RunInterrupted
from prunegen.train import train

TINY_RUN = ["trainer.max_epochs=4", "metrics.every_n_epochs=1000"]


def test_a_truncated_newest_checkpoint_resumes_from_the_one_before_and_completes(make_cfg, tmp_path, interrupt_at, caplog):
    reference, _ = train(make_cfg(*TINY_RUN))  # the uninterrupted run, in its own folder
    cfg = make_cfg(*TINY_RUN)
    cfg.paths.output_dir = str(tmp_path / "cut")
    interrupt_at(3)  # killed at the start of epoch 3: checkpoints of epochs 1 and 2 kept
    with pytest.raises(RunInterrupted):
        train(cfg)
    folder = tmp_path / "cut" / "checkpoints"
    epochs = sorted(p.name for p in folder.glob("epoch=*.ckpt"))
    assert len(epochs) == 2 and os.path.islink(folder / "last.ckpt")
    newest = folder / os.readlink(folder / "last.ckpt")
    newest.write_bytes(newest.read_bytes()[:1000])  # cut short, as a kill during a non-atomic write would
    found, skipped = newest_loadable(folder)
    assert found is not None and found.name != newest.name and "not a checkpoint" in skipped[0]
    record, _ = train(cfg)  # the same command again
    assert record["status"] == "completed" and record["resumed_from"] == str(found)
    assert "skipped last.ckpt" in caplog.text
    assert record["metrics"]["fid"] == pytest.approx(reference["metrics"]["fid"], rel=1e-6)


def test_a_garbage_checkpoint_is_named_without_torchs_advice(tmp_path):
    garbage = tmp_path / "model.ckpt"
    garbage.write_text("not a checkpoint at all")
    with pytest.raises(NotACheckpoint, match=r"model.ckpt is not a checkpoint") as err:
        load_weights(torch.nn.Linear(1, 1), garbage)
    assert "weights_only" not in str(err.value)


def test_init_ckpt_of_another_architecture_is_explained_from_the_two_configs(make_cfg, tmp_path):
    train(make_cfg())
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    cfg = make_cfg("model.generator.ngf=16", f"init_ckpt={ckpt}")
    cfg.paths.output_dir = str(tmp_path / "wider")
    with pytest.raises(ValueError, match=r"another architecture.*\n  model.generator.ngf: checkpoint 8, this run 16"):
        train(cfg)
    assert json.loads((tmp_path / "wider" / "metrics.json").read_text())["status"] == "failed"
