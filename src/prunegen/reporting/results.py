"""The committed data behind a results table (docs/results/NAME.json): render it, put it between a
Markdown file's markers (every table's in docs/results.md; README.md shows make_run's too), and compare
it with a rerun cell by cell.

A data file holds: `name`, `provenance` (where its numbers come from), `commands` (shell lines, run from
the repository root, that rerun the sweep), `sweep_dir` (where those runs land), `metric_setup`,
`label_header`, `columns` ([{header, cell, missing}]: `cell` is a template such as "{fid} ({fid_vs_dense}x)")
and `rows`: [{label, bold, select, seeds, cells (per-row templates), values}], where each value is
{key (a flat metrics.json key, or "a/b" for a ratio), mean, std, decimals, thousands, show_std, select,
per_seed}: std is the spread over distinct seeds (what --check tolerates), show_std false keeps it out of the cell.
A table's block sits between `<!-- table:NAME -->` and `<!-- /table:NAME -->`. Optional: `figure`
({plot, path}: prunegen-table's plot of the same runs, copied to path on a rerun) and `from_table`
(rows from prunegen-table instead of hand-laid ones: fromtable.py).
"""

import json
import re
from pathlib import Path
from typing import Any

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
ROW_KEYS = {"label", "bold", "select", "seeds", "cells", "values", "note"}


def load_data(path: str | Path) -> dict[str, Any]:
    """Read and check a data file; a ValueError names the file, the row and the bad key."""
    path = Path(path)
    data = json.loads(path.read_text())
    for key in ("name", "columns", "rows", "provenance"):
        if key not in data:
            raise ValueError(f"{path}: missing {key!r}")
    for i, row in enumerate(data["rows"]):
        unknown = set(row) - ROW_KEYS
        if unknown:
            raise ValueError(f"{path}: rows[{i}] ({row.get('label')}) has unknown keys {sorted(unknown)}")
        for column in data["columns"]:
            for name in PLACEHOLDER.findall(template(row, column)):
                if name not in row.get("values", {}):
                    raise ValueError(f"{path}: rows[{i}] ({row['label']}) column {column['header']!r} uses {{{name}}}, "
                                     f"which is not in its values {sorted(row.get('values', {}))}")
    return data


def template(row: dict[str, Any], column: dict[str, Any]) -> str:
    return row.get("cells", {}).get(column["header"], column["cell"])


def number(value: dict[str, Any]) -> str:
    """mean (± std) with the value's decimals (and thousands separators)."""
    spec = f"{',' if value.get('thousands') else ''}.{value.get('decimals', 2)}f"
    text = format(value["mean"], spec)
    shown = value.get("std") is not None and value.get("show_std", True)
    return text + (f" ± {format(value['std'], spec)}" if shown else "")


def render_cell(row: dict[str, Any], column: dict[str, Any]) -> str:
    """The column's template filled in; a cell whose values are missing is the column's `missing` text."""
    text = template(row, column)
    names = PLACEHOLDER.findall(text)
    if any(row["values"][n].get("mean") is None for n in names):
        return column.get("missing", "–")
    return PLACEHOLDER.sub(lambda m: number(row["values"][m.group(1)]), text)


def render(data: dict[str, Any]) -> str:
    """The Markdown table of a data file, as docs/results.md shows it."""
    head = [data.get("label_header", "run")] + [c["header"] for c in data["columns"]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in data["rows"]:
        cells = [row["label"]] + [render_cell(row, c) for c in data["columns"]]
        if row.get("bold"):
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- {note}" for note in data.get("notes", [])]  # e.g. the points of the sweep that did not complete
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n"


def markers(name: str) -> tuple[str, str]:
    return f"<!-- table:{name} -->", f"<!-- /table:{name} -->"


def block(text: str, name: str, where: str = "the file") -> str:
    """The text between a table's markers (without them) in a Markdown file's text."""
    start, end = markers(name)
    if text.count(start) != 1 or text.count(end) != 1:
        raise ValueError(f"{where} needs exactly one {start} and one {end} (put them where the table {name} goes)")
    return text.split(start, 1)[1].split(end, 1)[0].strip("\n") + "\n"


def replace_block(text: str, name: str, table: str) -> str:
    """The text with the block of `name` replaced by `table`; nothing else changes."""
    block(text, name)  # checks the markers
    start, end = markers(name)
    before, rest = text.split(start, 1)
    after = rest.split(end, 1)[1]
    return f"{before}{start}\n{table.rstrip(chr(10))}\n{end}{after}"


def _tolerance(old: dict[str, Any], new: dict[str, Any]) -> float:
    """The seed spread (the larger std of the two), never less than half a unit of the shown decimals."""
    rounding = 0.5 * 10 ** -old.get("decimals", 2)
    return max(old.get("std") or 0.0, new.get("std") or 0.0, rounding)


def moved_cells(committed: dict[str, Any], rerun: dict[str, Any]) -> list[str]:
    """Every value that moved by more than the seed spread, or that one side lacks, as a line each."""
    found = {r["label"]: r for r in rerun["rows"]}
    out = []
    for row in committed["rows"]:
        other = found.get(row["label"])
        if other is None:
            out.append(f"{row['label']}: missing in the rerun")
            continue
        for name, old in row["values"].items():
            new = other["values"].get(name, {})
            if (old.get("mean") is None) != (new.get("mean") is None):
                out.append(f"{row['label']} / {name}: committed {old.get('mean')}, rerun {new.get('mean')}")
            elif old.get("mean") is not None and abs(new["mean"] - old["mean"]) > _tolerance(old, new):
                out.append(f"{row['label']} / {name}: committed {number(old)}, rerun {number({**old, **new})} "
                           f"(moved {new['mean'] - old['mean']:+.4g}, more than {_tolerance(old, new):.4g})")
    return out
