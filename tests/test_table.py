import json

import pytest

from prunegen.reporting.plot import pareto_front, series_name
from prunegen.reporting.table import write_table


def _run(root, name, seed, overrides, fid, macs, pruned=True, teacher=True):
    record = {
        "status": "completed",
        "run": {"seed": seed, "overrides": [f"seed={seed}", f"init_ckpt=/runs/dense{seed}/last.ckpt", *overrides]},
        "generator": {"sparsity": 0.5 if pruned else 0.0, "params_nonzero": 10, "macs_effective": macs},
        "metrics": {"fid": fid, "kid_mean": 0.1, "is_mean": 2.0, "class_coverage": 9.0, "extractor": "classifier"},
        "pruning": {"method": "structured_layer" if pruned else None, "target_sparsity": 0.5 if pruned else None},
        "dense_metrics": {"fid": 2.0} if teacher else {},
    }
    (root / name).mkdir(parents=True)
    (root / name / "metrics.json").write_text(json.dumps(record))


def test_table_averages_seeds_and_writes_every_format(tmp_path):
    for seed, fid in [(0, 2.0), (1, 4.0)]:
        _run(tmp_path, f"a{seed}", seed, ["pruning.final_sparsity=0.5"], fid, 100)
        _run(tmp_path, f"b{seed}", seed, ["pruning.final_sparsity=0.75"], fid + 10, 30)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "metrics.json").write_text(json.dumps({"status": "failed"}))
    rows = write_table(tmp_path)
    assert [r["seeds"] for r in rows] == [2, 2]
    a = next(r for r in rows if r["run"] == "pruning.final_sparsity=0.5")
    assert a["FID"] == pytest.approx(3.0) and a["FID std"] == pytest.approx(2 ** 0.5)
    assert a["FID / dense"] == pytest.approx(1.5)
    for name in ("table.md", "table.csv", "table.tex", "fid_vs_macs.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "3 ± 1.41" in (tmp_path / "table.md").read_text()


def test_pareto_front():
    assert pareto_front([(100, 2.0), (30, 12.0), (50, 20.0), (10, 30.0)]) == [(10, 30.0), (30, 12.0), (100, 2.0)]


def test_series_name_drops_only_the_sparsity():
    assert series_name("distill=output pruning.criterion=bn_scale pruning.final_sparsity=0.75") == "distill=output pruning.criterion=bn_scale"
    assert series_name("pruning=lightning_modelpruning") == "pruning=lightning_modelpruning"


def test_plot_without_teacher_scores_has_one_panel(tmp_path):
    _run(tmp_path, "dense", 0, [], 2.0, 100, pruned=False, teacher=False)
    _run(tmp_path, "pruned", 0, ["pruning=unstructured"], 3.0, 100, teacher=False)
    rows = write_table(tmp_path)
    assert all(r["FID / dense"] is None for r in rows)
    assert (tmp_path / "fid_vs_macs.png").stat().st_size > 0
