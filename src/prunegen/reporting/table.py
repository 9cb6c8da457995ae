"""prunegen-table: aggregate the metrics.json files of a sweep into table.md/.csv/.tex and a plot."""

import argparse
import csv
import json
import statistics
from pathlib import Path
from typing import Any

from prunegen.reporting.record import flatten

# (column, metrics.json key, format); numbers are averaged over seeds.
COLUMNS = [
    ("target sparsity", "pruning.target_sparsity", "{:.3g}"),
    ("sparsity", "generator.sparsity", "{:.3f}"),
    ("nonzero params", "generator.params_nonzero", "{:,.0f}"),
    ("MACs", "generator.macs_effective", "{:,.0f}"),
    ("FID", "metrics.fid", "{:.3g}"),
    ("KID", "metrics.kid_mean", "{:.4f}"),
    ("IS", "metrics.is_mean", "{:.2f}"),
    ("classes", "metrics.class_coverage", "{:.2f}"),
    ("FID / dense", "fid_vs_dense", "{:.2f}"),
    ("CPU ms/256", "export.compact.latency_ms", "{:.1f}"),
    ("speedup", "export.speedup", "{:.2f}"),
    ("file KB", "export.compact.file_kb", "{:.0f}"),
]


def load_runs(root: str | Path) -> list[dict[str, Any]]:
    """Flattened records of the completed runs under `root`, sorted by path."""
    runs = []
    for path in sorted(Path(root).rglob("metrics.json")):
        record = flatten(json.loads(path.read_text()))
        if record.get("status") == "completed":
            record["path"] = str(path.parent)
            if record.get("dense_metrics.fid"):  # the same run's teacher, scored with the same budget
                record["fid_vs_dense"] = record["metrics.fid"] / record["dense_metrics.fid"]
            if "export.compact.file_bytes" in record:
                record["export.compact.file_kb"] = record["export.compact.file_bytes"] / 1024
            runs.append(record)
    return runs


def group_key(run: dict[str, Any]) -> str:
    """What the run is, without its seed: its overrides minus `seed=`, hydra's own and checkpoint paths
    (a per-seed dense checkpoint is the same method on another seed)."""
    kept = [o for o in run.get("run.overrides", [])
            if not o.startswith(("seed=", "hydra.")) and not o.split("=", 1)[0].endswith(("ckpt", "ckpt_path"))]
    return " ".join(sorted(kept)) or "(defaults)"


def short_labels(keys: list[str]) -> dict[str, str]:
    """Label each group by the overrides that differ between groups (paths and shared settings dropped)."""
    parsed = {k: dict(o.split("=", 1) for o in k.split() if "=" in o) for k in keys}
    names = {n for d in parsed.values() for n in d}
    groups = {"experiment", "model", "data", "pruning", "distill"}  # config-group choices always name a run
    varying = sorted(n for n in names if n in groups or len({d[n].lower() for d in parsed.values() if n in d}) > 1)
    return {k: " ".join(f"{n}={d[n]}" for n in varying if n in d) or k for k, d in parsed.items()}


def aggregate(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per group: the mean and std over seeds of every column, plus a sample grid."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault(group_key(run), []).append(run)
    labels = short_labels(list(groups))
    rows = []
    for key, members in groups.items():
        row: dict[str, Any] = {"run": labels[key], "seeds": len(members), "samples": members[0].get("samples")}
        row["pruned"] = members[0].get("pruning.method") is not None
        row["extractor"] = members[0].get("metrics.extractor")
        for name, k, _ in COLUMNS:
            values = [m[k] for m in members if isinstance(m.get(k), (int, float))]
            row[name] = statistics.fmean(values) if values else None
            row[f"{name} std"] = statistics.stdev(values) if len(values) > 1 else None
        rows.append(row)
    return sorted(rows, key=lambda r: (r["pruned"], r["target sparsity"] or 0, r["run"]))


def _cell(row: dict[str, Any], name: str, fmt: str) -> str:
    if row[name] is None:
        return "-"
    text = fmt.format(row[name])
    return text + (" ± " + fmt.format(row[f"{name} std"]) if row.get(f"{name} std") is not None else "")


def render_markdown(rows: list[dict[str, Any]]) -> str:
    head = ["run", "seeds"] + [c[0] for c in COLUMNS] + ["samples"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["run"], str(r["seeds"])] + [_cell(r, n, f) for n, _, f in COLUMNS] + [str(r["samples"])]
        lines.append("| " + " | ".join(cells) + " |")
    extractors = sorted({str(r["extractor"]) for r in rows})
    return "\n".join(lines) + f"\n\nScores in the feature space of: {', '.join(extractors)}.\n"


def render_latex(rows: list[dict[str, Any]]) -> str:
    head = ["run"] + [c[0] for c in COLUMNS]
    body = [" & ".join([r["run"].replace("_", r"\_")] + [_cell(r, n, f).replace("±", r"$\pm$") for n, _, f in COLUMNS]) + r" \\" for r in rows]
    return "\n".join([r"\begin{tabular}{l" + "r" * len(COLUMNS) + "}", r"\toprule", " & ".join(head) + r" \\", r"\midrule", *body, r"\bottomrule", r"\end{tabular}", ""])


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def print_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="prunegen results")
    for name in ["run", "seeds"] + [c[0] for c in COLUMNS]:
        table.add_column(name, overflow="fold")
    for r in rows:
        table.add_row(r["run"], str(r["seeds"]), *[_cell(r, n, f) for n, _, f in COLUMNS])
    Console(width=220).print(table)
    for r in rows:
        print(f"samples of {r['run']}: {r['samples']}")


def write_table(root: str | Path, out_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """Aggregate `root` and write table.md/.csv/.tex and fid_vs_macs.png into `out_dir` (default: root)."""
    runs = load_runs(root)
    if not runs:
        raise FileNotFoundError(f"no completed metrics.json under {root}")
    rows = aggregate(runs)
    out = Path(out_dir or root)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(render_markdown(rows))
    (out / "table.tex").write_text(render_latex(rows))
    write_csv(rows, out / "table.csv")
    from prunegen.reporting.plot import plot_fid_vs_macs

    plot_fid_vs_macs(rows, out / "fid_vs_macs.png")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", help="a run or multirun folder holding metrics.json files")
    parser.add_argument("--out", default=None, help="where to write the table files (default: root)")
    args = parser.parse_args(argv)
    rows = write_table(args.root, args.out)
    print_table(rows)
    print(f"wrote {Path(args.out or args.root) / 'table.md'} (.csv, .tex) and fid_vs_macs.png")


if __name__ == "__main__":
    main()


def print_compress_table(record: dict[str, Any]) -> None:
    """Dense vs compact after a compress run: cost, speed and scores side by side."""
    from rich.console import Console
    from rich.table import Table

    ex = record["export"]
    table = Table(title=f"dense vs compact ({record.get('metrics', {}).get('extractor', '?')} features)")
    for name in ["", "MACs", "params", "file KB", "CPU ms/256", "FID", "KID", "IS", "classes"]:
        table.add_column(name, justify="right")
    for side, metrics in [("dense", record.get("dense_metrics", {})), ("compact", record.get("metrics", {}))]:
        e = ex[side]
        table.add_row(side, f"{e['macs']:,}", f"{e['params']:,}", f"{e['file_bytes'] / 1024:.0f}", f"{e['latency_ms']:.1f}",
                      *[f"{metrics[k]:.4g}" if isinstance(metrics.get(k), (int, float)) else "-"
                        for k in ("fid", "kid_mean", "is_mean", "class_coverage")])
    table.add_row("ratio", f"{ex['macs_ratio']:.1f}x", "", "", f"{ex['speedup']:.2f}x", "", "", "", "")
    Console(width=150).print(table)
