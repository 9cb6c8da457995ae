import copy
import json
from pathlib import Path

import pytest

from prunegen.reporting.reproduce import collect, main
from prunegen.reporting.results import block, load_data, markers, moved_cells, render, replace_block

ROOT = Path(__file__).parents[1]
DATA = sorted((ROOT / "docs" / "results").glob("*.json"))
RESULTS = ROOT / "docs" / "results.md"  # every table's block; the README shows make_run's as well
README = ROOT / "README.md"


@pytest.mark.parametrize("path", DATA, ids=lambda p: p.stem)
def test_committed_data_renders_the_blocks(path):
    data = load_data(path)
    results, readme = RESULTS.read_text(), README.read_text()
    start = markers(data["name"])[0]
    if not data["rows"]:  # a table whose sweep has not run yet has no block and says so
        assert data["provenance"].startswith("not yet measured") and start not in results + readme
        return
    assert render(data) == block(results, data["name"], "docs/results.md")
    if start in readme:
        assert render(data) == block(readme, data["name"], "README.md")


def test_the_readme_shows_make_runs_the_frontier_ends_and_the_diffusion_table_and_no_other():
    readme = README.read_text()
    assert markers("make_run")[0] in readme
    shown = [p.stem for p in DATA if markers(p.stem)[0] in readme]
    assert shown == ["diff_pruning_digits", "frontier_ends_digits", "make_run"]


def test_committed_tables_are_wired():
    assert {p.stem for p in DATA} >= {"make_run", "frontier_digits"}


def test_check_flags_a_cell_changed_by_hand():
    committed = load_data(ROOT / "docs" / "results" / "frontier_digits.json")
    rerun = copy.deepcopy(committed)
    assert moved_cells(committed, rerun) == []
    row = next(r for r in rerun["rows"] if r["label"].startswith("**") or r.get("bold"))
    row["values"]["fid"]["mean"] += 0.9 * row["values"]["fid"]["std"]  # within the seed spread: not a move
    assert moved_cells(committed, rerun) == []
    edited = copy.deepcopy(committed)
    target = next(r for r in edited["rows"] if r["label"] == "dense")
    target["values"]["classes"]["mean"] = 8.0  # a hand-edited number, 11 stds away
    (line,) = moved_cells(edited, committed)
    assert line.startswith("dense / classes: committed 8.00 ± 0.15, rerun 9.65 ± 0.15")


def test_a_single_seed_value_is_checked_to_its_shown_decimals():
    committed = load_data(ROOT / "docs" / "results" / "make_run.json")
    rerun = copy.deepcopy(committed)
    fid = rerun["rows"][0]["values"]["fid"]  # three decimals (0.937), no spread
    shown = fid["mean"]
    fid["mean"] = shown + 0.0004
    assert moved_cells(committed, rerun) == []
    fid["mean"] = shown + 0.002
    assert [m.split(":")[0] for m in moved_cells(committed, rerun)] == ["dense / fid"]
    del rerun["rows"][2]
    assert "75% channels removed + distillation: missing in the rerun" in moved_cells(committed, rerun)


def test_replace_block_changes_only_the_block():
    readme = "intro\n<!-- table:t -->\n| a |\n|---|\n| 1 |\n<!-- /table:t -->\noutro\n"
    out = replace_block(readme, "t", "| a |\n|---|\n| 2 |\n")
    assert out == "intro\n<!-- table:t -->\n| a |\n|---|\n| 2 |\n<!-- /table:t -->\noutro\n"
    with pytest.raises(ValueError, match="table:u"):
        replace_block(readme, "u", "x")


# --- a tiny table end to end: committed data, fixture runs (the "rerun"), --check, rewrite

def _run(root, name, seed, sparsity, fid):
    record = {"status": "completed", "run": {"seed": seed, "overrides": [f"seed={seed}", f"pruning.final_sparsity={sparsity}"]},
              "metrics": {"fid": fid, "extractor": "classifier"}, "generator": {"macs": 100, "macs_effective": 100 * (1 - sparsity)},
              "config": {"task_name": "train", "seed": seed}}
    (root / name).mkdir(parents=True)
    (root / name / "metrics.json").write_text(json.dumps(record))


def _value(key, mean, std, decimals):
    return {"key": key, "mean": mean, "std": std, "decimals": decimals}


@pytest.fixture
def tiny(tmp_path):
    runs = tmp_path / "runs"
    for seed, shift in [(0, 0.0), (1, 0.2)]:
        _run(runs, f"a{seed}", seed, 0.5, 2.0 + shift)
        _run(runs, f"b{seed}", seed, 0.75, 3.0 + shift)
    row = lambda label, s, fid, ratio: {"label": label, "select": {"pruning.final_sparsity": s}, "seeds": [0, 1], "values": {
        "fid": _value("metrics.fid", fid, 0.14, 2),
        "ratio": {**_value("generator.macs/generator.macs_effective", ratio, None, 1), "show_std": False}}}
    data = {"name": "tiny", "provenance": "test", "commands": ["false"], "sweep_dir": str(runs), "label_header": "run",
            "columns": [{"header": "FID", "cell": "{fid}"}, {"header": "MACs", "cell": "{ratio}x fewer"}],
            "rows": [row("half", "0.5", 2.1, 2.0), row("three quarters", "0.75", 3.1, 4.0)]}
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "tiny.json").write_text(json.dumps(data))
    (tmp_path / "results.md").write_text(f"# x\n<!-- table:tiny -->\n{render(data)}<!-- /table:tiny -->\nend\n")
    return tmp_path


def _main(tiny, *args):
    with pytest.raises(SystemExit) as done:
        main(["tiny", "--data-dir", str(tiny / "results"), "--doc", str(tiny / "results.md"), *args])
    return done.value.code


def test_collect_measures_each_value_over_distinct_seeds(tiny):
    data = load_data(tiny / "results" / "tiny.json")
    rerun = collect(data, tiny / "runs")
    fid = rerun["rows"][0]["values"]["fid"]
    assert fid["mean"] == pytest.approx(2.1) and fid["std"] == pytest.approx(0.1414, abs=1e-4)
    assert fid["per_seed"] == {"0": 2.0, "1": pytest.approx(2.2)} and rerun["rows"][0]["seeds"] == [0, 1]
    assert rerun["rows"][1]["values"]["ratio"]["mean"] == 4.0


def test_cli_check_passes_then_flags_a_hand_edit(tiny, capsys):
    runs = str(tiny / "runs")
    assert _main(tiny, "--check", "--runs", runs) == 0
    path = tiny / "results" / "tiny.json"
    data = json.loads(path.read_text())
    data["rows"][1]["values"]["fid"]["mean"] = 2.5  # edited by hand
    path.write_text(json.dumps(data))
    assert _main(tiny, "--check", "--runs", runs) == 1
    assert "three quarters / fid: committed 2.50 ± 0.14, rerun 3.10 ± 0.14" in capsys.readouterr().out


def test_cli_rewrites_the_data_and_only_the_block(tiny):
    data = json.loads((tiny / "results" / "tiny.json").read_text())
    data["rows"][0]["values"]["fid"]["mean"] = 9.0
    (tiny / "results" / "tiny.json").write_text(json.dumps(data))
    assert _main(tiny, "--render") == 0
    assert "| half | 9.00 ± 0.14 | 2.0x fewer |" in (tiny / "results.md").read_text()
    assert _main(tiny, "--runs", str(tiny / "runs")) == 0
    doc = (tiny / "results.md").read_text()
    assert doc.startswith("# x\n<!-- table:tiny -->\n") and doc.endswith("<!-- /table:tiny -->\nend\n")
    assert "| half | 2.10 ± 0.14 | 2.0x fewer |" in doc
    assert "prunegen-reproduce" in json.loads((tiny / "results" / "tiny.json").read_text())["provenance"]


def test_every_file_with_the_block_is_rewritten_and_one_is_needed(tiny, capsys):
    readme, other = tiny / "README.md", tiny / "other.md"
    readme.write_text("intro\n<!-- table:tiny -->\nold\n<!-- /table:tiny -->\n")
    other.write_text("no table here\n")
    path = tiny / "results" / "tiny.json"
    data = json.loads(path.read_text())
    data["rows"][0]["values"]["fid"]["mean"] = 9.0
    path.write_text(json.dumps(data))
    assert _main(tiny, "--render", "--doc", str(readme), "--doc", str(other)) == 0
    for doc in (tiny / "results.md", readme):
        assert "| half | 9.00 ± 0.14 | 2.0x fewer |" in block(doc.read_text(), "tiny")
    assert other.read_text() == "no table here\n"
    assert f"tiny: block in {readme} rewritten" in capsys.readouterr().out
    with pytest.raises(ValueError, match="table:tiny"):
        main(["tiny", "--render", "--data-dir", str(tiny / "results"), "--doc", str(other)])


def test_a_select_matching_two_configurations_is_an_error(tiny):
    data = load_data(tiny / "results" / "tiny.json")
    data["rows"][0]["select"] = {}
    with pytest.raises(ValueError, match="matches 2 configurations"):
        collect(data, tiny / "runs")


def test_a_template_naming_an_unknown_value_is_an_error(tiny):
    path = tiny / "results" / "tiny.json"
    data = json.loads(path.read_text())
    data["columns"][0]["cell"] = "{fdi}"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="fdi"):
        load_data(path)


# --- a table built from prunegen-table's rows: GAN-LTH's three lines pivoted by weights remaining

REFERENCE = ROOT / "docs" / "results" / "references" / "gan_lth_sngan_cifar10.yaml"


def _rounds_run(root, name, seed, fids, overrides=(), criterion="magnitude", protocol="imp", start=0):
    # as pruning/imp.py writes them: achieved sparsity (a hair off the target) and the protocol's target
    rounds = [{"round": i, "sparsity": 1 - 0.8 ** i + 1e-4 * seed * (i > 0), "remaining": 0.8 ** i - 1e-4 * seed * (i > 0),
               "target_sparsity": 1 - 0.8 ** i, "fid": f, "fid_best": f,
               "kid_mean": 0.01, "is_mean": 2.0, "class_coverage": 9.0, "epoch": i} for i, f in enumerate(fids) if i >= start]
    record = {"status": "completed", "run": {"seed": seed, "overrides": [f"seed={seed}", "experiment=paper/gan_lth_digits", *overrides]},
              "metrics": {"fid": fids[-1], "extractor": "classifier"},
              "pruning": {"method": f"{protocol}_global", "protocol": protocol, "criterion": criterion, "rounds": rounds},
              "config": {"task_name": "train", "seed": seed, "pruning": {"criterion": criterion, "ticket_masks": None}}}
    (root / name).mkdir(parents=True)
    (root / name / "metrics.json").write_text(json.dumps(record))


@pytest.fixture
def lth(tmp_path):
    runs = tmp_path / "runs"
    for seed, d in [(0, 0.0), (1, 0.2)]:
        _rounds_run(runs, f"imp_seed{seed}", seed, [2.0 + d, 1.9 + d, 2.1 + d])
        _rounds_run(runs, f"random_seed{seed}", seed, [2.0 + d, 3.0 + d, 4.0 + d], ["pruning.criterion=random"], "random",
                    "random_pruning")
        _rounds_run(runs, f"ticket_seed{seed}", seed, [2.0 + d, 2.5 + d, 3.5 + d],
                    [f"pruning.ticket_masks={runs}/imp_seed{seed}/imp_masks.pt"], protocol="random_ticket", start=1)
    data = {"name": "lth", "provenance": "not yet measured", "commands": [], "sweep_dir": str(runs), "columns": [], "rows": [],
            "from_table": {"reference": str(REFERENCE), "pivot": {"by": "remaining", "value": "FID / dense"}}}
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "lth.json").write_text(json.dumps(data))
    (tmp_path / "results.md").write_text("# x\n<!-- table:lth -->\n<!-- /table:lth -->\n")
    return tmp_path


def test_a_pivoted_table_of_the_three_lines_beside_the_paper(lth):
    data = collect(load_data(lth / "results" / "lth.json"), lth / "runs")
    headers = [c["header"] for c in data["columns"]]
    assert headers == ["IMP (magnitude, global): FID / dense", "random pruning: FID / dense",
                       "random ticket (IMP masks, re-initialised): FID / dense", "GAN-LTH FID (inception) / dense"]
    assert [r["label"] for r in data["rows"]][:4] == ["100.0%", "80.0%", "64.0%", "51.2%"]
    table = render(data)
    assert "| 80.0% | 0.952 ± 0.003 | 1.48 ± 0.03 | 1.24 ± 0.02 | 0.90 |" in table  # the seeds of a ticket are one line
    assert "| 10.7% | – | – | – | 1.25 |" in table and "not completed" not in table
    # the ticket starts at round 1 (pruning.start_round): compared with the dense round of its seed's IMP run
    assert "| 100.0% | 1.00 ± 0.00 | 1.00 ± 0.00 | – | 1.00 |" in table


def test_a_pivoted_table_notes_the_runs_that_did_not_complete(lth):
    (lth / "runs" / "imp_seed2").mkdir()
    (lth / "runs" / "imp_seed2" / "metrics.json").write_text(json.dumps({
        "status": "interrupted", "signal": "SIGTERM", "last_epoch": 12,
        "run": {"seed": 2, "overrides": ["seed=2", "experiment=paper/gan_lth_digits"]},
        "config": {"task_name": "train", "seed": 2, "pruning": {"criterion": "magnitude", "ticket_masks": None}}}))
    table = render(collect(load_data(lth / "results" / "lth.json"), lth / "runs"))
    assert table.endswith("interrupted: SIGTERM after epoch 12\n") and "\n\n- not completed: " in table


def test_cli_writes_then_checks_a_table_built_from_runs(lth, capsys):
    args = ["lth", "--data-dir", str(lth / "results"), "--doc", str(lth / "results.md"), "--runs", str(lth / "runs")]
    with pytest.raises(SystemExit) as done:
        main(args)
    assert done.value.code == 0 and "| 64.0% |" in block((lth / "results.md").read_text(), "lth")
    path = lth / "results" / "lth.json"
    data = json.loads(path.read_text())
    assert render(load_data(path)) == block((lth / "results.md").read_text(), "lth")
    data["rows"][2]["values"]["random_pruning"]["mean"] = 1.0  # edited by hand
    path.write_text(json.dumps(data))
    with pytest.raises(SystemExit) as done:
        main([*args, "--check"])
    assert done.value.code == 1 and "64.0% / random_pruning: committed 1.00" in capsys.readouterr().out


def test_all_skips_a_table_no_file_has_a_place_for(tiny, capsys):
    (tiny / "results" / "unplaced.json").write_text((tiny / "results" / "tiny.json").read_text().replace('"tiny"', '"unplaced"'))
    with pytest.raises(SystemExit) as done:
        main(["--all", "--render", "--data-dir", str(tiny / "results"), "--doc", str(tiny / "results.md")])
    out = capsys.readouterr().out
    assert done.value.code == 0 and "unplaced: skipped" in out
    assert f"tiny: block in {tiny / 'results.md'} unchanged" in out


def test_a_rerun_redraws_the_tables_figure(lth):
    path = lth / "results" / "lth.json"
    data = json.loads(path.read_text())
    data["figure"] = {"plot": "fid_vs_remaining.png", "path": str(lth / "lth.png")}
    path.write_text(json.dumps(data))
    with pytest.raises(SystemExit) as done:
        main(["lth", "--data-dir", str(lth / "results"), "--doc", str(lth / "results.md"), "--runs", str(lth / "runs")])
    assert done.value.code == 0 and (lth / "lth.png").stat().st_size > 0


def test_render_from_any_folder_leaves_committed_files_byte_identical(tmp_path, monkeypatch, capsys):
    from prunegen.reporting.reproduce import REPO, main

    before = {p: p.read_bytes() for p in (REPO / "README.md", REPO / "docs" / "results.md")}
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(["make_run", "--render"])
    assert done.value.code == 0 and "unchanged" in capsys.readouterr().out
    assert all(p.read_bytes() == b for p, b in before.items())
    with pytest.raises(SystemExit):
        main(["--help"])
    tables = "diff_pruning_digits, frontier_digits, frontier_ends_digits, frontier_ends_digits_lr5e-4, gan_lth_digits, make_run"
    assert f"tables: {tables}" in capsys.readouterr().out
