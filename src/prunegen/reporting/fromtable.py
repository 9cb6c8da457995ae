"""Results tables (docs/results.md) built from prunegen-table's rows (a data file with `from_table` instead of hand-laid rows).

    "from_table": {"columns": ["round", "remaining", "FID", "FID / dense", "classes"],   # prunegen-table columns
                   "reference": "docs/results/references/gan_lth_sngan_cifar10.yaml",  # optional: its column too
                   "pivot": {"by": "remaining", "value": "FID / dense"}}               # optional, see below

Without `pivot` a row is a row of prunegen-table (a method, a round). With it a row is a fraction of weights
remaining and a column is a method (and the reference), the layout of a paper's table.
"""

import math
import re
from typing import Any

from prunegen.reporting.render import status_cell
from prunegen.reporting.table import table_rows

PERCENT = {"remaining", "target sparsity", "sparsity"}


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "value"


def decimals(mean: float | None, name: str) -> int:
    """Three significant digits (percentages: one decimal; rounds: none)."""
    if name == "round":
        return 0
    if name in PERCENT:
        return 1
    if not mean:
        return 2
    return min(4, max(0, 2 - math.floor(math.log10(abs(mean)))))


def value(row: dict[str, Any], name: str) -> dict[str, Any]:
    scale = 100.0 if name in PERCENT else 1.0
    mean, std = row.get(name), row.get(f"{name} std")
    return {"key": name, "mean": None if mean is None else scale * mean, "std": None if std is None else scale * std,
            "decimals": decimals(None if mean is None else scale * mean, name)}


def _unique(label: str, seen: set[str]) -> str:
    out, n = label, 2
    while out in seen:
        out, n = f"{label} ({n})", n + 1
    seen.add(out)
    return out


def long_rows(rows: list[dict[str, Any]], names: list[str]) -> tuple[list[dict], list[dict]]:
    columns = [{"header": "seeds", "cell": "{seeds}"}] + [
        {"header": n, "cell": f"{{{slug(n)}}}{'%' if n in PERCENT else ''}", "missing": "–"} for n in names]
    if any(not r.get("completed") for r in rows):
        columns.insert(0, {"header": "status", "cell": "completed"})
    out, seen = [], set()
    for r in rows:
        label = r["series"] + (f", round {r['round']}" if r.get("round") is not None else "")
        values = {slug(n): value(r, n) for n in names}
        values["seeds"] = {"key": "seeds", "mean": r["seeds"], "std": None, "decimals": 0}
        row = {"label": _unique(label, seen), "seeds": r["seeds"], "values": values}
        if not r.get("completed"):
            row["cells"] = {"status": status_cell(r)}
        out.append(row)
    return columns, out


def pivot_rows(rows: list[dict[str, Any]], by: str, name: str, ref: Any) -> tuple[list[dict], list[dict]]:
    """One row per value of `by` (remaining), one column per series (method), the reference's last
    (divided by its own dense value when the table shows FID / dense)."""
    ref_column = ref.column if ref is not None else None
    per_dense = name == "FID / dense" and ref is not None and ref.dense()
    series = list(dict.fromkeys(r["series"] for r in rows if r.get("completed")))
    keys = sorted({round(r[by], 4) for r in rows if r.get(by) is not None and (r.get("completed") or r["status"] == "reference")},
                  reverse=True)
    columns = [{"header": f"{s}: {name}", "cell": f"{{{slug(s)}}}", "missing": "–"} for s in series]
    if ref_column:
        columns.append({"header": ref_column + (" / dense" if per_dense else ""), "cell": "{reference}", "missing": "–"})
    out = []
    for key in keys:
        at = [r for r in rows if r.get(by) is not None and round(r[by], 4) == key]
        values = {}
        for s in series:
            hit = next((r for r in at if r["series"] == s and r.get("completed")), {})
            values[slug(s)] = value(hit, name) if hit else {"key": name, "mean": None, "std": None, "decimals": 2}
        if ref_column:
            hit = next((r for r in at if r.get(ref_column) is not None), {})
            ref_value = hit.get(ref_column) / per_dense if hit and per_dense else hit.get(ref_column)
            values["reference"] = {"key": ref_column, "mean": ref_value, "std": None,
                                   "decimals": 2 if per_dense else decimals(ref_value, ref_column)}
        label = f"{100 * key:.1f}%" if by in PERCENT else f"{key:g}"
        out.append({"label": label, "seeds": max([r["seeds"] for r in at if r.get("completed")], default=0), "values": values})
    return columns, out


def from_table(spec: dict[str, Any], root: Any) -> dict[str, Any]:
    """label_header, columns, rows (and notes) of a data file, measured from the runs under `root`.
    A pivoted table has no place for a run that did not complete: each one is a note under it."""
    rows, _, ref = table_rows(root, spec.get("reference"))
    rows = [r for r in rows if r["kind"] == "train"]
    pivot = spec.get("pivot")
    if pivot:
        columns, out = pivot_rows(rows, pivot.get("by", "remaining"), pivot["value"], ref)
        notes = [f"not completed: {r['run']}, {r['seeds']} seed(s): {status_cell(r)}"
                 for r in rows if not r.get("completed") and r["status"] != "reference"]
        return {"label_header": pivot.get("by", "remaining"), "columns": columns, "rows": out, "notes": notes}
    names = list(spec["columns"]) + ([ref.column] if ref else [])
    columns, out = long_rows([r for r in rows if r["status"] != "reference"], names)
    return {"label_header": "method", "columns": columns, "rows": out, "notes": []}
