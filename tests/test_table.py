import csv
import json
from pathlib import Path

import pytest

from prunegen.reporting.plot import pareto_front
from prunegen.reporting.reference import load_reference
from prunegen.reporting.table import main, write_table

REFERENCE = Path(__file__).parents[1] / "docs" / "results" / "references" / "gan_lth_sngan_cifar10.yaml"


def _write(root, name, record):
    (root / name).mkdir(parents=True)
    (root / name / "metrics.json").write_text(json.dumps(record))


def _run(root, name, seed, overrides, fid, macs, pruned=True, teacher=True, **extra):
    record = {
        "status": "completed",
        "run": {"seed": seed, "overrides": [f"seed={seed}", f"init_ckpt=/runs/dense{seed}/last.ckpt", *overrides]},
        "generator": {"sparsity": 0.5 if pruned else 0.0, "params_nonzero": 10, "macs_effective": macs},
        "metrics": {"fid": fid, "kid_mean": 0.1, "is_mean": 2.0, "class_coverage": 9.0, "extractor": "classifier"},
        "pruning": {"method": "structured_layer" if pruned else None, "criterion": "magnitude" if pruned else None,
                    "target_sparsity": 0.5 if pruned else None},
        "dense_metrics": {"fid": 2.0} if teacher else {},
        "config": {"task_name": "train", "seed": seed, "trainer": {"max_epochs": 3}},
        **extra,
    }
    _write(root, name, record)


def _md(root):
    return (root / "table.md").read_text()


def test_table_averages_seeds_and_writes_every_format(tmp_path):
    for seed, fid in [(0, 2.0), (1, 4.0)]:
        _run(tmp_path, f"a{seed}", seed, ["pruning.final_sparsity=0.5"], fid, 100)
        _run(tmp_path, f"b{seed}", seed, ["pruning.final_sparsity=0.75"], fid + 10, 30)
    rows = write_table(tmp_path)
    assert [r["seeds"] for r in rows] == [2, 2]
    a = next(r for r in rows if r["run"] == "pruning.final_sparsity=0.5")
    assert a["FID"] == pytest.approx(3.0) and a["FID std"] == pytest.approx(2 ** 0.5)
    assert a["FID / dense"] == pytest.approx(1.5)
    for name in ("table.md", "table.csv", "table.tex", "fid_vs_macs.png", "fid_vs_remaining.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "**3.00 ± 1.41**" in _md(tmp_path)  # the best FID of the column is bold, its spread at its precision
    tex = (tmp_path / "table.tex").read_text()
    assert r"\toprule" in tex and r"\textbf{3.00 $\pm$ 1.41}" in tex and r"pruning.final\_sparsity=0.5" in tex


def test_failed_and_interrupted_points_are_rows_with_their_status(tmp_path):
    _run(tmp_path, "ok", 0, ["pruning.final_sparsity=0.5"], 2.0, 100)
    _write(tmp_path, "failed", {"status": "failed", "error": "RuntimeError: out of memory\ntraceback line",
                                "run": {"seed": 0, "overrides": ["seed=0", "pruning.final_sparsity=0.9"]},
                                "config": {"task_name": "train", "seed": 0, "trainer": {"max_epochs": 3},
                                           "pruning": {"_target_": "x", "granularity": "structured", "scope": "layer",
                                                       "criterion": "taylor"}}})
    _write(tmp_path, "stopped", {"status": "interrupted", "signal": "SIGTERM", "last_epoch": 2,
                                 "run": {"seed": 0, "overrides": ["seed=0", "pruning.final_sparsity=0.75"]}})
    # a failed export once left `completed` beside an error: never a good row
    _run(tmp_path, "export_failed", 1, ["pruning.final_sparsity=0.5"], 1.0, 100, error="OSError: disk full")
    rows = write_table(tmp_path)
    status = {r["run"]: (r["status"], r["detail"]) for r in rows if r["status"] != "completed"}
    assert status["pruning.final_sparsity=0.9"] == ("failed", "RuntimeError: out of memory")
    assert next(r for r in rows if r["status"] == "failed" and "0.9" in r["run"])["series"] == "taylor structured (layer)"
    assert status["pruning.final_sparsity=0.75"] == ("interrupted", "SIGTERM after epoch 2")
    assert "| failed: RuntimeError: out of memory |" in _md(tmp_path)
    csv_status = sorted(r["status"] for r in csv.DictReader((tmp_path / "table.csv").open()))
    assert csv_status == ["completed", "failed: OSError: disk full", "failed: RuntimeError: out of memory",
                          "interrupted: SIGTERM after epoch 2"]
    done = next(r for r in rows if r["status"] == "completed")
    assert done["seeds"] == 1 and done["FID"] == 2.0  # the errored seed-1 run is not averaged in
    assert "failed: OSError: disk full" in _md(tmp_path)
    assert "traceback line" not in _md(tmp_path)


def test_an_override_given_to_one_run_only_splits_the_label(tmp_path):
    _run(tmp_path, "a", 0, ["pruning.final_sparsity=0.5"], 2.0, 100)
    _run(tmp_path, "b", 0, ["pruning.final_sparsity=0.5", "trainer.max_epochs=41"], 3.0, 100)
    rows = write_table(tmp_path)
    assert sorted(r["run"] for r in rows) == ["(defaults)", "trainer.max_epochs=41"]


def test_runs_with_equal_overrides_but_other_configs_get_distinct_labels(tmp_path):
    _run(tmp_path, "a", 0, [], 2.0, 100)
    _run(tmp_path, "b", 0, [], 3.0, 100, config={"task_name": "train", "trainer": {"max_epochs": 9}})
    labels = sorted(r["run"] for r in write_table(tmp_path))
    assert labels[0] != labels[1] and "trainer.max_epochs=3" in labels[0] and "trainer.max_epochs=9" in labels[1]


def test_seeds_count_distinct_seeds(tmp_path):
    _run(tmp_path, "a", 0, [], 2.0, 100)
    _run(tmp_path, "again", 0, [], 4.0, 100)  # the same seed once more: one sample, not "2 seeds ± 0"
    (row,) = write_table(tmp_path)
    assert row["seeds"] == 1 and row["runs"] == 2 and row["FID"] == pytest.approx(3.0) and row["FID std"] is None
    assert "| 1 (2 runs) |" in _md(tmp_path)


def test_eval_records_are_a_section_of_their_own(tmp_path):
    _run(tmp_path, "train", 0, [], 2.0, 100)
    _write(tmp_path, "eval", {"status": "completed", "run": {"overrides": ["ckpt_path=/r/x/checkpoints/last.ckpt"], "seeds": [0, 1, 2]},
                              "source": {"ckpt_path": "/r/x/checkpoints/last.ckpt"}, "config": {"task_name": "eval"},
                              "metrics": {"fid": 5.0, "extractor": "classifier", "over_seeds": {"fid": {"mean": 5.0, "std": 0.5}}}})
    rows = write_table(tmp_path)
    ev = next(r for r in rows if r["kind"] == "eval")
    assert ev["seeds"] == 3 and ev["FID std"] == 0.5 and "last.ckpt" in ev["run"]
    md = _md(tmp_path)
    assert md.index("## Training runs") < md.index("## Evaluations") < md.index("5.00 ± 0.50")


def _imp(root, name, seed, fids, overrides=()):
    rounds = [{"round": i, "sparsity": round(1 - 0.8 ** i, 4), "remaining": round(0.8 ** i, 4), "fid": f,
               "fid_best": f - 0.1, "kid_mean": 0.01, "is_mean": 2.0, "class_coverage": 9.0, "epoch": 2 * i + 1}
              for i, f in enumerate(fids)]
    _run(root, name, seed, ["pruning=lottery", *overrides], fids[-1], 100, teacher=False)
    record = json.loads((root / name / "metrics.json").read_text())
    record["pruning"].update(method="unstructured_global", rounds=rounds)
    (root / name / "metrics.json").write_text(json.dumps(record))


def test_imp_rounds_are_rows_and_the_reference_gets_a_column_and_a_curve(tmp_path):
    for seed, shift in [(0, 0.0), (1, 0.2)]:
        _imp(tmp_path, f"imp{seed}", seed, [2.0 + shift, 1.8 + shift, 2.2 + shift])
    main([str(tmp_path), f"reference={REFERENCE}"])
    rows = write_table(tmp_path, reference=REFERENCE)
    ours = [r for r in rows if r["status"] == "completed"]
    assert [r["round"] for r in ours] == [0, 1, 2] and all(r["seeds"] == 2 for r in ours)
    column = load_reference(REFERENCE).column
    assert [r[column] for r in ours] == [15.7, 14.2, 14.3]
    assert ours[1]["FID / dense"] == pytest.approx((1.8 / 2.0 + 2.0 / 2.2) / 2)
    assert ours[1]["series"] == "IMP (magnitude, global)"
    only = [r for r in rows if r["status"] == "reference"]
    assert len(only) == 8 and only[-1]["remaining"] == 0.107  # the paper's points we did not reach
    md = _md(tmp_path)
    assert column in md and "**14.2**" in md and "GAN-LTH" in (tmp_path / "table.csv").read_text()
    assert (tmp_path / "fid_vs_remaining.png").stat().st_size > 0


def test_series_are_named_by_method(tmp_path):
    _run(tmp_path, "dense", 0, ["experiment=dense_digits"], 2.0, 100, pruned=False, teacher=False)
    _run(tmp_path, "p5", 0, ["pruning.final_sparsity=0.5", "distill=output"], 3.0, 50)
    _run(tmp_path, "p7", 0, ["pruning.final_sparsity=0.75", "distill=output"], 4.0, 25)
    _run(tmp_path, "ft", 0, ["pruning.final_sparsity=0.75", "distill=none"], 9.0, 25)
    _run(tmp_path, "long", 0, ["pruning.final_sparsity=0.75", "distill=output", "trainer.max_epochs=41"], 3.5, 25)
    rows = write_table(tmp_path)
    assert {r["series"] for r in rows} == {"dense", "magnitude structured (layer)", "magnitude structured (layer) + distillation",
                                           "magnitude structured (layer) + distillation (max_epochs=41)"}


def test_reference_file_errors_name_the_problem(tmp_path):
    bad = tmp_path / "ref.yaml"
    bad.write_text("name: x\nmetric: fid\nrows:\n  - {remaining: 80, fid: 1.0}\n")
    with pytest.raises(ValueError, match="not a fraction"):
        load_reference(bad)
    bad.write_text("name: x\nmetric: psnr\nrows: []\n")
    with pytest.raises(ValueError, match="psnr"):
        load_reference(bad)


def test_pareto_front():
    assert pareto_front([(100, 2.0), (30, 12.0), (50, 20.0), (10, 30.0)]) == [(10, 30.0), (30, 12.0), (100, 2.0)]


def test_plot_without_teacher_scores_has_one_panel(tmp_path):
    _run(tmp_path, "dense", 0, [], 2.0, 100, pruned=False, teacher=False)
    _run(tmp_path, "pruned", 0, ["pruning=unstructured"], 3.0, 100, teacher=False)
    rows = write_table(tmp_path)
    assert all(r["FID / dense"] is None for r in rows)
    assert (tmp_path / "fid_vs_macs.png").stat().st_size > 0


def test_reference_keyed_by_x_with_a_paper_title(tmp_path):
    ref = tmp_path / "ref.yaml"
    ref.write_text("paper: A Paper (X et al.)\nsource: https://example.org/fig.png\nmetric: fid\nx: remaining\n"
                   "rows:\n  - {remaining: 1.0, sparsity: 0.0, fid: 15.7}\n  - {remaining: 0.8, sparsity: 0.2, fid: 14.2}\n")
    loaded = load_reference(ref)
    assert loaded.name == "A Paper (X et al.)" and "example.org" in loaded.citation
    assert loaded.at(0.8) == (14.2, None) and loaded.at(0.7) is None and loaded.dense() == 15.7


def test_earlier_attempts_show_in_the_status(tmp_path):
    attempts = [{"status": "interrupted", "signal": "SIGTERM", "started": "t0"}, {"status": "completed", "started": "t1"}]
    _run(tmp_path, "a", 0, [], 2.0, 100, attempts=attempts, started="t1")
    (row,) = write_table(tmp_path)
    assert row["status"] == "completed" and "| completed (1 earlier attempt) |" in _md(tmp_path)


def test_a_resumed_seed_stays_in_its_row(tmp_path):
    attempts = [{"status": "interrupted", "signal": "SIGTERM", "started": "t0"}, {"status": "completed", "started": "t1"}]
    _run(tmp_path, "a", 0, [], 2.0, 100, attempts=attempts, started="t1")
    _run(tmp_path, "b", 1, [], 4.0, 100)
    (row,) = write_table(tmp_path)
    assert row["seeds"] == 2 and row["FID"] == 3.0 and row["attempts"] == 1


def test_remaining_plot_draws_the_paper_curve_and_marks_sparsities(tmp_path, monkeypatch):
    import prunegen.reporting.plot as plot

    figures = []
    monkeypatch.setattr(plot.plt, "close", figures.append)  # keep the figure to look at it
    for seed in (0, 1):
        _imp(tmp_path, f"imp{seed}", seed, [2.0, 1.8, 2.2])
    write_table(tmp_path, reference=REFERENCE)
    fig = figures[-1]  # fid_vs_remaining.png is drawn last
    fid_axis, ratio_axis = fig.axes[:2]
    paper = next(line for line in fid_axis.get_lines() if line.get_label().startswith("GAN-LTH"))
    assert list(paper.get_xdata()) == pytest.approx([100, 80, 64, 51.2, 41, 32.8, 26.2, 21, 16.8, 13.4, 10.7])
    assert list(paper.get_ydata())[:2] == [15.7, 14.2]
    ratios = [list(line.get_ydata()) for line in ratio_axis.get_lines() if len(line.get_xdata()) == 11]
    assert ratios and ratios[0][1] == pytest.approx(14.2 / 15.7)
    assert {t.get_text() for t in fid_axis.texts} == {"0", "0.2", "0.36"}  # each point marked with its sparsity
    assert "IMP (magnitude, global)" in [line.get_label() for line in fid_axis.get_lines()] + \
        [c.get_label() for c in fid_axis.containers]


REFERENCES = sorted((Path(__file__).parents[1] / "src" / "prunegen" / "configs").rglob("*.reference.yaml")) + \
    sorted(REFERENCE.parent.glob("*.yaml"))


@pytest.mark.parametrize("path", REFERENCES, ids=lambda p: p.name)
def test_every_shipped_reference_file_loads(path):
    ref = load_reference(path)
    assert len(ref.points) >= 2 and ref.dense() is not None and ref.citation


def test_rounds_of_other_pruning_callbacks_are_not_rows(tmp_path):
    # PruningCallback lists every round it pruned (epoch, target, achieved): the run's final scores are its row
    _run(tmp_path, "oneshot", 0, ["pruning.final_sparsity=0.5"], 2.5, 100,
         pruning={"method": "structured_layer", "criterion": "magnitude", "target_sparsity": 0.5,
                  "rounds": [{"epoch": 0, "target": 0.5, "achieved_sparsity": 0.5, "layers": []}]})
    (row,) = write_table(tmp_path)
    assert row["round"] is None and row["FID"] == 2.5 and row["FID / dense"] == 1.25


def test_table_md_shows_each_runs_sample_grid_as_an_image(tmp_path):
    _run(tmp_path, "a0", 0, ["pruning.final_sparsity=0.5"], 2.0, 100, samples=str(tmp_path / "a0" / "samples.png"))
    _run(tmp_path, "b0", 0, ["pruning.final_sparsity=0.75"], 3.0, 30)
    write_table(tmp_path)
    md = _md(tmp_path)
    assert "![samples of pruning.final_sparsity=0.5](a0/samples.png)" in md  # relative to table.md: renders beside it
    assert "samples of pruning.final_sparsity=0.75" not in md  # a run without a grid gets no broken link


def test_paper_ready_labels_fewer_macs_precision_and_chosen_columns(tmp_path, capsys):
    from prunegen.reporting.table import main as table_main
    from prunegen.reporting.table import table_rows

    _run(tmp_path, "dense", 0, ["experiment=dense_digits"], 1.0, 4000, pruned=False, teacher=False,
         config={"task_name": "train", "seed": 0, "label": "dense DCGAN"})
    for seed, fid in [(0, 1.0812), (1, 1.1123)]:
        _run(tmp_path, f"p{seed}", seed, ["pruning.final_sparsity=0.75"], fid, 1000)
    rows, *_ = table_rows(tmp_path)
    by_label = {r["run"]: r for r in rows}
    assert set(by_label) == {"dense DCGAN", "pruning.final_sparsity=0.75"}  # the label key names its row
    assert by_label["pruning.final_sparsity=0.75"]["x fewer MACs"] == 4.0
    table_main([str(tmp_path), "--columns", "FID,x fewer MACs,MACs"])
    md = _md(tmp_path)
    assert "| run | status | seeds | FID | x fewer MACs | MACs |" in md
    assert "1.10 ± 0.02" in md  # the spread at the mean's precision (3 significant digits)
    assert "| dense DCGAN | completed | 1 | **1.00** | 1.00 | 4,000 |" in md  # the best FID in bold
    with pytest.raises(SystemExit, match="no column \\['FDI'\\]"):
        table_main([str(tmp_path), "--columns", "FDI"])


def test_one_checkpoint_shared_by_every_seed_is_one_configuration(tmp_path):
    """init_ckpt=.../dense/seed0/last.ckpt for seeds 0, 1, 2 (one dense model fine-tuned with three seeds) is one
    row; per-seed checkpoints (.../dense0/, .../dense1/: the `_run` default) stay one row as well."""
    for seed, fid in [(0, 2.0), (1, 4.0), (2, 3.0)]:
        _run(tmp_path / "shared", f"a{seed}", seed, ["init_ckpt=/runs/dense/seed0/last.ckpt"], fid, 100)
        _run(tmp_path / "own", f"a{seed}", seed, [], fid, 100)
    for root in ("shared", "own"):
        (row,) = write_table(tmp_path / root)
        assert row["seeds"] == 3 and row["FID"] == pytest.approx(3.0)
