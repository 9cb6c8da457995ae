"""Table rows -> Markdown, LaTeX (booktabs) and CSV: mean ± std over seeds, the best value of each score
column in bold, failed and interrupted points with their status, evaluations in a section of their own."""

import csv
import math
import os
from pathlib import Path
from typing import Any

# (column, flat metrics.json key, format, which value is best: min | max | None)
COLUMNS = [
    ("round", "round", "{:.0f}", None),
    ("target sparsity", "pruning.target_sparsity", "{:.3g}", None),
    ("sparsity", "generator.sparsity", "{:.3f}", None),
    ("remaining", "remaining", "{:.1%}", None),
    ("nonzero params", "generator.params_nonzero", "{:,.0f}", None),
    ("MACs", "generator.macs_effective", "{:,.0f}", None),
    ("x fewer MACs", "x fewer MACs", "{:.3g}", None),  # against the sweep's dense run (aggregate.fewer_macs)
    ("FID", "metrics.fid", "{:.3g}", "min"),
    ("best FID", "metrics.fid_best", "{:.3g}", "min"),
    ("KID", "metrics.kid_mean", "{:.4f}", "min"),
    ("IS", "metrics.is_mean", "{:.2f}", "max"),
    ("classes", "metrics.class_coverage", "{:.2f}", "max"),
    ("FID / dense", "fid_vs_dense", "{:.2f}", "min"),
    # the real-vs-real floor (metrics.fid_floor), at its sample size (metrics.fid_at_floor_n): 1 is real data
    ("FID / floor", "fid_vs_floor", "{:.2f}", "min"),
    ("CPU ms/256", "export.compact.latency_ms", "{:.1f}", "min"),
    ("speedup", "export.speedup", "{:.2f}", "max"),
    ("file KB", "export.compact.file_kb", "{:.0f}", None),
    ("int8 / fp32 speed", "int8_speedup", "{:.2f}", None),  # +int8 rows: the best fp32 form's time / int8's (ORT, 1 thread)
]
DESCRIPTIVE = {c[0] for c in COLUMNS if c[3] is None}
SECTIONS = [("train", "Training runs"), ("eval", "Evaluations (prunegen-eval)")]


def columns_with(reference: Any = None) -> list[tuple]:
    """The columns, with a reference's column right after ours of the same metric."""
    if reference is None:
        return list(COLUMNS)
    from prunegen.reporting.reference import METRICS

    cols = list(COLUMNS)
    at = next(i for i, c in enumerate(cols) if c[0] == METRICS[reference.metric]) + 1
    cols.insert(at, (reference.column, reference.column, "{:.3g}", reference.better))
    return cols


def used(rows: list[dict[str, Any]], columns: list[tuple]) -> list[tuple]:
    """The columns that hold a value in at least one row."""
    return [c for c in columns if any(r.get(c[0]) is not None for r in rows)]


def best(rows: list[dict[str, Any]], columns: list[tuple]) -> dict[str, float]:
    """The best mean of each score column over the rows (a column with one value has no best)."""
    out = {}
    for name, _, _, better in columns:
        values = [r[name] for r in rows if better and r.get(name) is not None]
        if len(set(values)) > 1:  # a column whose values are all equal has no best
            out[name] = min(values) if better == "min" else max(values)
    return out


def cell(row: dict[str, Any], name: str, fmt: str) -> str:
    """mean ± std; a spread of exactly 0 in a column that describes the point (round, sparsity) is not shown."""
    if row.get(name) is None:
        return "-"
    std = row.get(f"{name} std")
    if std is not None and std == 0 and name in DESCRIPTIVE:
        std = None
    if fmt != "{:.3g}":
        return fmt.format(row[name]) + (" ± " + fmt.format(std) if std is not None else "")
    decimals = significant_decimals(row[name])
    return f"{row[name]:.{decimals}f}" + (f" ± {std:.{decimals}f}" if std is not None else "")


def significant_decimals(x: float, digits: int = 3) -> int:
    """Decimals that show `x` to `digits` significant digits (1.0968 -> 2: 1.10; 252.7 -> 0: 253); the spread
    is shown at the same decimals (1.10 ± 0.02, not 1.1 ± 0.0156)."""
    if not x or not math.isfinite(x):
        return 0
    return max(0, digits - 1 - math.floor(math.log10(abs(x))))


def status_cell(row: dict[str, Any]) -> str:
    """`failed: <first line of the error>`, `interrupted: SIGTERM after epoch 2`, `completed (1 earlier attempt)`."""
    text = row["status"] + (f": {row['detail']}" if row.get("detail") else "")
    n = row.get("attempts") or 0
    text += f" ({n} earlier attempt{'s' if n > 1 else ''})" if n else ""
    return text + (" — scores not valid: extractor below the default thresholds (valid: false)" if row.get("invalid") else "")


def seeds_cell(row: dict[str, Any]) -> str:
    """Distinct seeds; when some seed ran more than once, how many runs."""
    return str(row["seeds"]) + (f" ({row['runs']} runs)" if row["runs"] > row["seeds"] else "")


def _cells(row: dict[str, Any], cols: list[tuple], top: dict[str, float], bold: str) -> list[str]:
    out = []
    for name, _, fmt, _ in cols:
        text = cell(row, name, fmt)
        out.append(bold.format(text) if name in top and row.get(name) == top[name] else text)
    return out


def markdown_table(rows: list[dict[str, Any]], columns: list[tuple]) -> str:
    cols = used(rows, columns)
    top = best(rows, cols)
    head = ["run", "status", "seeds"] + [c[0] for c in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join([r["run"], status_cell(r), seeds_cell(r)] + _cells(r, cols, top, "**{}**")) + " |")
    return "\n".join(lines)


def render_markdown(rows: list[dict[str, Any]], columns: list[tuple] = COLUMNS, notes: list[str] | None = None,
                    base: str | Path | None = None) -> str:
    """The tables, then each run's sample grid as an image (paths relative to `base`, the table's folder)."""
    parts = []
    for kind, title in SECTIONS:
        mine = [r for r in rows if r["kind"] == kind]
        if mine:
            extractors = sorted({str(r["extractor"]) for r in mine if r.get("completed")})
            parts.append(f"## {title}\n\n{markdown_table(mine, columns)}\n\n"
                         f"Scores in the feature space of: {', '.join(extractors) or '-'}.")
    samples = [f"**{r['run']}**\n\n![samples of {r['run']}]({_link(r['samples'], base)})" for r in rows if r.get("samples")]
    if samples:
        parts.append("## Samples\n\n" + "\n\n".join(samples))
    return "\n\n".join(parts + list(notes or [])) + "\n"


def _link(path: str, base: str | Path | None) -> str:
    """`path` relative to `base` where it can be (so the markdown renders beside its images)."""
    if base is None:
        return str(path)
    try:
        return os.path.relpath(Path(path).resolve(), Path(base).resolve())
    except ValueError:  # another drive
        return str(path)


TEX = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "$": r"\$",
       "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$"}


def _tex(text: str) -> str:
    return "".join(TEX.get(c, c) for c in text)


def latex_table(rows: list[dict[str, Any]], columns: list[tuple]) -> str:
    cols = used(rows, columns)
    top = best(rows, cols)
    head = " & ".join(_tex(h) for h in ["run", "status", "seeds"] + [c[0] for c in cols]) + r" \\"
    body = []
    for r in rows:
        cells = [_tex(c) for c in _cells(r, cols, top, "@@{}@@")]
        cells = [c.replace("@@", r"\textbf{", 1).replace("@@", "}", 1) for c in cells]
        body.append(" & ".join([_tex(r["run"]), _tex(status_cell(r)), seeds_cell(r)] + cells) + r" \\")
    return "\n".join([r"\begin{tabular}{ll" + "r" * (len(cols) + 1) + "}", r"\toprule", head, r"\midrule",
                      *body, r"\bottomrule", r"\end{tabular}"])


def render_latex(rows: list[dict[str, Any]], columns: list[tuple] = COLUMNS) -> str:
    """booktabs tables (\\usepackage{booktabs}), one per section."""
    parts = []
    for kind, title in SECTIONS:
        mine = [r for r in rows if r["kind"] == kind]
        if mine:
            parts.append(f"% {title}\n{latex_table(mine, columns)}")
    return "\n\n".join(parts) + "\n"


def write_csv(rows: list[dict[str, Any]], path: Path, columns: list[tuple] = COLUMNS) -> None:
    """Every row and every column (mean and std), the kind and status included: `status` as the tables show it
    (`failed: <first line of the error>`), `detail` and `attempts` (earlier attempts) apart as well."""
    fields = ["kind", "run", "series", "status", "detail", "attempts", "seeds", "runs"]
    for name, *_ in columns:
        fields += [name, f"{name} std"]
    fields += ["extractor", "samples", "paths"]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, "status": status_cell(r), "paths": " ".join(r.get("paths") or [])})
