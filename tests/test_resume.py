"""A run killed after a pruning round and resumed from its last checkpoint ends with the same masks."""

import torch

from prunegen.pruning.masks import prunable_layers
from prunegen.train import train

SCHEDULE = ["pruning.start_epoch=0", "pruning.end_epoch=3", "pruning.every_n_epochs=1", "pruning.ramp=linear",
            "pruning.final_sparsity=0.6", "callbacks.sample_grid=null"]


def _masks(model):
    return {p: m.weight_mask.clone() for p, m in prunable_layers(model, ["generator"]).items()}


def test_resume_gives_identical_masks(make_cfg, tmp_path):
    for granularity, criterion in [("unstructured", "gradient"), ("structured", "taylor")]:
        common = [*SCHEDULE, f"pruning=unstructured", f"pruning.granularity={granularity}", f"pruning.criterion={criterion}"]
        full_cfg = make_cfg(*common, "trainer.max_epochs=4")
        full_cfg.paths.output_dir = str(tmp_path / granularity / "full")
        _, full = train(full_cfg)

        part_cfg = make_cfg(*common, "trainer.max_epochs=2")
        part_cfg.paths.output_dir = str(tmp_path / granularity / "part")
        train(part_cfg)  # "killed" after the round at the end of epoch 1

        resumed_cfg = make_cfg(*common, "trainer.max_epochs=4", f"ckpt_path={tmp_path / granularity / 'part' / 'checkpoints' / 'last.ckpt'}")
        resumed_cfg.paths.output_dir = str(tmp_path / granularity / "resumed")
        _, resumed = train(resumed_cfg)

        a, b = _masks(full["model"]), _masks(resumed["model"])
        assert a.keys() == b.keys()
        for path in a:
            assert torch.equal(a[path], b[path]), f"{granularity}: {path}"
        assert full["pruning"].applied == resumed["pruning"].applied == 0.6
        assert full["pruning"].sparsity(full["model"]) > 0.5
