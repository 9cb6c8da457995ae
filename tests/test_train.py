import json

import pytest
from hydra.errors import InstantiationException

from prunegen.train import train

CONTRACT_KEYS = [
    "status", "run.seed", "run.overrides", "run.wall_time_s", "data.name", "data.image_size", "model.name",
    "model.family", "generator.params_total", "generator.params_nonzero", "generator.sparsity", "generator.macs",
    "generator.macs_effective", "metrics.fid", "metrics.kid_mean", "metrics.kid_std", "metrics.is_mean",
    "metrics.is_std", "metrics.class_coverage", "metrics.extractor", "metrics.extractor_accuracy",
    "metrics.num_samples", "pruning.method", "pruning.criterion", "pruning.target_sparsity",
]


def _get(record, dotted):
    for part in dotted.split("."):
        record = record[part]
    return record


def test_entry_point_writes_metrics_json(make_cfg, tmp_path):
    cfg = make_cfg("pruning=unstructured", "pruning.start_epoch=0", "pruning.end_epoch=0", "pruning.final_sparsity=0.5")
    record, _ = train(cfg)
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert on_disk["status"] == "completed"
    for key in CONTRACT_KEYS:
        _get(on_disk, key)  # KeyError names a missing key
    assert on_disk["model"]["family"] == "gan" and on_disk["data"]["name"] == "digits"
    assert on_disk["pruning"]["achieved_sparsity"] == pytest.approx(0.5, abs=1e-3)
    assert 0 < on_disk["generator"]["sparsity"] < 0.5  # biases and BatchNorm are not pruned
    assert on_disk["generator"]["params_nonzero"] < on_disk["generator"]["params_total"]
    assert on_disk["metrics"]["fid"] > 0 and 1 <= on_disk["metrics"]["class_coverage"] <= 10
    assert on_disk["metrics"]["num_samples"] == 64
    assert (tmp_path / "run" / "samples.png").exists()
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()


def test_dense_run_records_null_pruning(make_cfg, tmp_path):
    record, _ = train(make_cfg("pruning=none"))
    assert record["pruning"] == {"method": None, "criterion": None, "target_sparsity": None}
    assert record["generator"]["sparsity"] == 0


@pytest.mark.parametrize("override, message", [
    ("pruning.final_sparsity=1.5", r"pruning.final_sparsity must be in \[0, 1\), got 1.5"),
    ("pruning.criterion=bogus", r"pruning.criterion must be one of .*'magnitude'"),
])
def test_bad_override_fails_before_training_and_is_recorded(make_cfg, tmp_path, override, message):
    cfg = make_cfg("pruning=unstructured", override)
    with pytest.raises(InstantiationException, match=message):
        train(cfg)
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["status"] == "failed" and "pruning" in record["error"]
    assert not (tmp_path / "run" / "checkpoints").exists()  # no training step ran
