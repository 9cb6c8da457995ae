import copy
import json
from pathlib import Path

import pytest

from prunegen.reporting.reproduce import collect, main
from prunegen.reporting.results import load_data, moved_cells, readme_block, render, replace_block

ROOT = Path(__file__).parents[1]
DATA = sorted((ROOT / "docs" / "results").glob("*.json"))


@pytest.mark.parametrize("path", DATA, ids=lambda p: p.stem)
def test_committed_data_renders_the_readme_block(path):
    data = load_data(path)
    assert render(data) == readme_block((ROOT / "README.md").read_text(), data["name"])


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
    fid = rerun["rows"][0]["values"]["fid"]  # 0.985, three decimals, no spread
    fid["mean"] = 0.9854
    assert moved_cells(committed, rerun) == []
    fid["mean"] = 0.987
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
        "fid": _value("metrics.fid", fid, 0.14, 2), "ratio": {**_value("generator.macs/generator.macs_effective", ratio, None, 1), "show_std": False}}}
    data = {"name": "tiny", "provenance": "test", "commands": ["false"], "sweep_dir": str(runs), "label_header": "run",
            "columns": [{"header": "FID", "cell": "{fid}"}, {"header": "MACs", "cell": "{ratio}x fewer"}],
            "rows": [row("half", "0.5", 2.1, 2.0), row("three quarters", "0.75", 3.1, 4.0)]}
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "tiny.json").write_text(json.dumps(data))
    (tmp_path / "README.md").write_text(f"# x\n<!-- table:tiny -->\n{render(data)}<!-- /table:tiny -->\nend\n")
    return tmp_path


def _main(tiny, *args):
    with pytest.raises(SystemExit) as done:
        main(["tiny", "--data-dir", str(tiny / "results"), "--readme", str(tiny / "README.md"), *args])
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


def test_cli_rewrites_the_data_and_only_the_readme_block(tiny):
    data = json.loads((tiny / "results" / "tiny.json").read_text())
    data["rows"][0]["values"]["fid"]["mean"] = 9.0
    (tiny / "results" / "tiny.json").write_text(json.dumps(data))
    assert _main(tiny, "--render") == 0
    assert "| half | 9.00 ± 0.14 | 2.0x fewer |" in (tiny / "README.md").read_text()
    assert _main(tiny, "--runs", str(tiny / "runs")) == 0
    readme = (tiny / "README.md").read_text()
    assert readme.startswith("# x\n<!-- table:tiny -->\n") and readme.endswith("<!-- /table:tiny -->\nend\n")
    assert "| half | 2.10 ± 0.14 | 2.0x fewer |" in readme
    assert "prunegen-reproduce" in json.loads((tiny / "results" / "tiny.json").read_text())["provenance"]


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
