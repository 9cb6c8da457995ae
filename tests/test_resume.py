"""A run killed after a pruning round and resumed from its last checkpoint ends with the same masks."""

import pytest
import torch

from prunegen.masks import prunable_layers
from prunegen.run.lifecycle import RunInterrupted
from prunegen.train import train

SCHEDULE = ["pruning.start_epoch=0", "pruning.end_epoch=3", "pruning.every_n_epochs=1", "pruning.ramp=linear",
            "pruning.final_sparsity=0.6", "callbacks.sample_grid=null"]


def _masks(model):
    return {p: m.weight_mask.clone() for p, m in prunable_layers(model, ["generator"]).items()}


def test_resume_gives_identical_masks(make_cfg, tmp_path, interrupt_at):
    for granularity, criterion in [("unstructured", "gradient"), ("structured", "taylor")]:
        common = [*SCHEDULE, "pruning=unstructured", f"pruning.granularity={granularity}", f"pruning.criterion={criterion}",
                  "trainer.max_epochs=4"]
        full_cfg = make_cfg(*common)
        full_cfg.paths.output_dir = str(tmp_path / granularity / "full")
        _, full = train(full_cfg)

        part_cfg = make_cfg(*common)
        part_cfg.paths.output_dir = str(tmp_path / granularity / "part")
        interrupt_at(2)  # killed after the round at the end of epoch 1
        with pytest.raises(RunInterrupted):
            train(part_cfg)

        resumed_cfg = make_cfg(*common, f"ckpt_path={tmp_path / granularity / 'part' / 'checkpoints' / 'last.ckpt'}")
        resumed_cfg.paths.output_dir = str(tmp_path / granularity / "resumed")
        _, resumed = train(resumed_cfg)

        a, b = _masks(full["model"]), _masks(resumed["model"])
        assert a.keys() == b.keys()
        for path in a:
            assert torch.equal(a[path], b[path]), f"{granularity}: {path}"
        assert full["pruning"].applied == resumed["pruning"].applied == 0.6
        assert full["pruning"].sparsity(full["model"]) > 0.5


def test_resumed_distillation_equals_uninterrupted(make_cfg, tmp_path):
    """The compress pipeline (EMA teacher snapshot, pruning round, distillation) killed after two epochs and
    resumed ends with the same teacher, student and EMA weights as an uninterrupted run. (The "kill" is a
    shorter max_epochs, which a cosine lr schedule would see: its resume is covered by its state test.)"""
    common = ["experiment=compress_digits", "pruning.start_epoch=0", "pruning.end_epoch=0", "pruning.final_sparsity=0.5",
              "export=none", "callbacks.sample_grid=null"]
    runs = {}
    for name, extra in [("full", ["trainer.max_epochs=4"]), ("part", ["trainer.max_epochs=2"]),
                        ("resumed", ["trainer.max_epochs=4", f"ckpt_path={tmp_path / 'part' / 'checkpoints' / 'last.ckpt'}"])]:
        cfg = make_cfg(*common, *extra)
        cfg.paths.output_dir = str(tmp_path / name)
        runs[name] = train(cfg)[1]
    full, resumed = runs["full"], runs["resumed"]
    for module in ("generator", "ema"):
        a, b = getattr(full["model"], module).state_dict(), getattr(resumed["model"], module).state_dict()
        assert a.keys() == b.keys()
        for key in a:
            assert torch.allclose(a[key].float(), b[key].float(), atol=1e-6), f"{module}.{key}"
    for key, value in full["distill"].teacher.state_dict().items():
        assert torch.equal(value, resumed["distill"].teacher.state_dict()[key])
