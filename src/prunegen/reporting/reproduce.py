"""prunegen-reproduce: rerun the sweep behind a results table and rewrite the table, or check it.

    prunegen-reproduce NAME            rerun docs/results/NAME.json's commands, rewrite the data and the table's blocks
    prunegen-reproduce NAME --check    rerun, and list every cell that moved by more than the seed spread (exit 1)
    prunegen-reproduce NAME --runs DIR use runs already there instead of rerunning (with or without --check)
    prunegen-reproduce NAME --render   rewrite the table's blocks from the committed data (no run)
    prunegen-reproduce --all ...       every docs/results/*.json that has a block

A table's block (between `<!-- table:NAME -->` and `<!-- /table:NAME -->`) is rewritten in every file of
`--doc` that has one: docs/results.md holds every table, README.md shows make_run's, frontier_ends_digits' and diff_pruning_digits' as well.
"""

import argparse
import copy
import fnmatch
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from prunegen.reporting.aggregate import identity, labels, seed_mean
from prunegen.reporting.results import block, load_data, markers, moved_cells, render, replace_block
from prunegen.reporting.runs import load_runs

REPO = Path(__file__).resolve().parents[3]  # the checkout (an editable install): where the tables live
DATA_DIR = Path("docs/results")
DOCS = (Path("docs/results.md"), Path("README.md"))  # the Markdown files whose table blocks are rewritten


def matches(record: dict[str, Any], select: dict[str, str], root: Path) -> bool:
    """Does a run match every `key: value` of `select`? Keys are overrides (compared as written), keys of the
    composed config, or `path` (a glob on the run folder relative to the sweep folder)."""
    for key, want in select.items():
        if key == "path":
            if not fnmatch.fnmatch(str(Path(record["path"]).relative_to(root)), want):
                return False
        elif key in record["overrides"]:
            if record["overrides"][key] != str(want):
                return False
        elif key in record["config_id"]:
            if json.loads(record["config_id"][key]) != want and str(json.loads(record["config_id"][key])) != str(want):
                return False
        else:
            return False
    return True


def _value_of(record: dict[str, Any], key: str) -> float | None:
    """A flat key's number, or `a/b`: the ratio of two."""
    if "/" in key:
        a, b = (_value_of(record, k) for k in key.split("/", 1))
        return a / b if a is not None and b else None
    value = record.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def measure(records: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """mean, std over distinct seeds (runs of one seed averaged first), and each seed's value."""
    return seed_mean(records, lambda r: _value_of(r, key))


def select_runs(records: list[dict[str, Any]], select: dict[str, str], root: Path, where: str) -> list[dict[str, Any]]:
    """The completed training runs that match; they must be one configuration (differing only by seed)."""
    chosen = [r for r in records if r["kind"] == "train" and r["completed"] and matches(r, select, root)]
    configs = sorted({identity(r) for r in chosen})
    if len(configs) > 1:
        names = labels(configs)
        raise ValueError(f"{where}: select {select} matches {len(configs)} configurations: {sorted(names.values())}")
    return chosen


def collect(data: dict[str, Any], root: str | Path) -> dict[str, Any]:
    """The data file with every value measured again from the runs under `root` (same layout and decimals)."""
    root = Path(root)
    out = copy.deepcopy(data)
    if "from_table" in data:  # rows are prunegen-table's (see fromtable.py)
        from prunegen.reporting.fromtable import from_table

        out.update(from_table(data["from_table"], root))
        out["provenance"] = f"measured by prunegen-reproduce from the runs under {root} on {time.strftime('%Y-%m-%d %H:%M')}"
        return out
    records = load_runs(root, variants=False)  # the paper tables' rows are runs, not their int8 files
    for row in out["rows"]:
        seeds: set[Any] = set()
        for name, value in row["values"].items():
            select = {**row.get("select", {}), **value.get("select", {})}
            runs = select_runs(records, select, root, f"{data['name']} / {row['label']} / {name}")
            value.update(measure(runs, value["key"]))
            seeds |= {s for r in runs for s in r["seed_list"]}
        row["seeds"] = sorted(seeds)
    out["provenance"] = f"measured by prunegen-reproduce from the runs under {root} on {time.strftime('%Y-%m-%d %H:%M')}"
    return out


def write_figure(data: dict[str, Any], root: str | Path) -> None:
    """The plot beside this table (`figure`: {plot: fid_vs_macs.png | fid_vs_remaining.png, path}),
    drawn by prunegen-table from the same runs (with the table's reference, if any)."""
    import shutil
    import tempfile

    from prunegen.reporting.table import write_table

    figure = data.get("figure")
    if not figure:
        return
    with tempfile.TemporaryDirectory() as out:
        write_table(root, out, (data.get("from_table") or {}).get("reference"))
        shutil.copyfile(Path(out) / figure["plot"], figure["path"])
    print(f"[reproduce] {data['name']}: {figure['path']} redrawn")


def run_commands(data: dict[str, Any]) -> None:
    for command in data.get("commands", []):
        print(f"[reproduce] {command}", flush=True)
        subprocess.run(["bash", "-c", f"set -euo pipefail; {command}"], check=True)


def placed(name: str, docs: list[Path]) -> list[Path]:
    """The files of `docs` that have a block for table `name`: at least one, each with exactly one pair of markers."""
    start, _ = markers(name)
    found = [doc for doc in docs if start in doc.read_text()]
    if not found:
        where = ", ".join(map(str, docs))
        raise ValueError(f"none of {where} has {start} (put the markers where the table {name} goes)")
    for doc in found:
        block(doc.read_text(), name, str(doc))
    return found


def reproduce(name: str, check: bool, runs: str | None, render_only: bool, docs: list[Path], data_dir: Path) -> int:
    path = data_dir / f"{name}.json"
    data = load_data(path)
    targets = placed(name, docs)  # before any run: some file must say where the table goes
    if not render_only:
        if runs is None:
            run_commands(data)
        rerun = collect(data, runs or data["sweep_dir"])
        if check:
            moved = moved_cells(data, rerun)
            print("\n".join([f"[reproduce] {name}: {len(moved)} cell(s) moved beyond the seed spread"] + moved))
            return 1 if moved else 0
        data = rerun
        path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
        write_figure(data, runs or data["sweep_dir"])
    table = render(data)
    for doc in targets:
        text = doc.read_text()
        same = block(text, name, str(doc)) == table
        if not same:
            doc.write_text(replace_block(text, name, table))
        print(f"[reproduce] {name}: block in {doc} {'unchanged' if same else 'rewritten'} ({path})")
    return 0


def table_names() -> list[str]:
    return sorted(p.stem for p in (REPO / DATA_DIR).glob("*.json"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=f"tables: {', '.join(table_names()) or '(none found)'}")
    parser.add_argument("names", nargs="*", help="tables to reproduce (docs/results/NAME.json)")
    parser.add_argument("--all", action="store_true", help="every docs/results/*.json")
    parser.add_argument("--check", action="store_true", help="report cells that moved beyond the seed spread; write nothing")
    parser.add_argument("--runs", default=None, help="read these runs instead of rerunning the commands")
    parser.add_argument("--render", action="store_true", help="only rewrite the table blocks from the committed data")
    parser.add_argument("--doc", action="append", default=None,
                        help="a Markdown file with table blocks; repeatable (default: docs/results.md and README.md)")
    parser.add_argument("--data-dir", default=str(DATA_DIR))
    args = parser.parse_args(argv)
    data_dir = Path(args.data_dir).resolve()
    docs = [Path(d).resolve() for d in args.doc] if args.doc else None
    runs = str(Path(args.runs).resolve()) if args.runs else None
    if not Path(DATA_DIR).is_dir() and (REPO / DATA_DIR).is_dir():  # from any folder: the commands and the
        os.chdir(REPO)  # sweep folders of the data files are relative to the checkout
        data_dir = REPO / DATA_DIR if args.data_dir == str(DATA_DIR) else data_dir
    docs = docs or [d.resolve() for d in DOCS]
    names = args.names
    if args.all:  # the tables some file has a place for (a table not yet placed is named, not run)
        text = "".join(doc.read_text() for doc in docs)
        names = [p.stem for p in sorted(data_dir.glob("*.json")) if markers(p.stem)[0] in text]
        for p in sorted(data_dir.glob("*.json")):
            if p.stem not in names:
                where = " or ".join(map(str, docs))
                print(f"[reproduce] {p.stem}: skipped, no {markers(p.stem)[0]} markers yet in {where}")
    if not names:
        parser.error("name a table (docs/results/NAME.json) or pass --all")
    if args.runs and len(names) > 1:
        parser.error("--runs reads one sweep: name one table")
    codes = [reproduce(n, args.check, runs, args.render, docs, data_dir) for n in names]
    sys.exit(max(codes))


if __name__ == "__main__":
    main()
