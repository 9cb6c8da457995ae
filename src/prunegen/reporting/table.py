"""prunegen-table: aggregate the metrics.json files of a sweep into table.md/.csv/.tex and plots.

    prunegen-table DIR [--out DIR] [--reference PATH]      (or: prunegen-table DIR reference=PATH)

Every point is listed (failed and interrupted ones with their status), runs that differ only by seed
are averaged over distinct seeds, evaluations are a section of their own, an IMP run's rounds are rows,
and a reference file (a paper's numbers) adds a column and a curve."""

import argparse
from pathlib import Path
from typing import Any

from prunegen.reporting.aggregate import aggregate, order
from prunegen.reporting.reference import add_reference, load_reference
from prunegen.reporting.render import COLUMNS, columns_with, render_latex, render_markdown, seeds_cell, status_cell, used, write_csv
from prunegen.reporting.runs import load_runs


def table_rows(root: str | Path, reference: str | Path | None = None) -> tuple[list[dict[str, Any]], list[tuple], Any]:
    """(rows, columns, reference) of the sweep under `root`; raises FileNotFoundError when it holds no metrics.json."""
    records = load_runs(root)
    if not records:
        raise FileNotFoundError(f"no metrics.json under {root}")
    ref = load_reference(reference) if reference else None
    rows = aggregate(records, COLUMNS)
    if ref is not None:
        rows = add_reference(rows, ref)
        rows.sort(key=order)
    return rows, columns_with(ref), ref


def reference_note(ref: Any) -> list[str]:
    if ref is None:
        return []
    return [f"{ref.column}: {ref.citation or ref.name}, matched to our rows by weights remaining "
            f"(a different setting and feature space: compare the shapes of the curves, not the numbers)."]


def choose_columns(names: str | None, columns: list[tuple]) -> list[tuple]:
    """`--columns "FID,MACs"`: those columns in that order (an unknown name is refused with the choices)."""
    if not names:
        return columns
    by_name = {c[0]: c for c in columns}
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in by_name]
    if unknown:
        raise SystemExit(f"prunegen-table --columns: no column {unknown}; the columns: {', '.join(by_name)}")
    return [by_name[n] for n in wanted]


def write_table(root: str | Path, out_dir: str | Path | None = None, reference: str | Path | None = None,
                columns: list[tuple] | None = None) -> list[dict[str, Any]]:
    """Aggregate `root` and write table.md/.csv/.tex, fid_vs_macs.png and fid_vs_remaining.png into `out_dir`
    (default: root); `columns`: the ones to show (default: all)."""
    rows, all_columns, ref = table_rows(root, reference)
    columns = columns or all_columns
    out = Path(out_dir or root)
    out.mkdir(parents=True, exist_ok=True)
    notes = reference_note(ref)
    if any(r["run"].endswith("+int8") for r in rows):
        notes.append("+int8 rows: the run's compact generator as an int8 ONNX file (export.quantize=int8), scored on the "
                     "same latents; its CPU ms is ONNX Runtime's at one thread, the others' PyTorch's; int8 / fp32 speed: "
                     "the fastest fp32 ONNX form's time over the int8 file's (< 1: int8 is slower on this CPU, keep fp32).")
    (out / "table.md").write_text(render_markdown(rows, columns, notes, base=out))
    (out / "table.tex").write_text(render_latex(rows, columns))
    write_csv(rows, out / "table.csv", columns)
    from prunegen.reporting.plot import plot_fid_vs_macs, plot_fid_vs_remaining

    train = [r for r in rows if r["kind"] == "train" and r.get("completed")]
    plot_fid_vs_macs(train, out / "fid_vs_macs.png")
    plot_fid_vs_remaining(train, out / "fid_vs_remaining.png", ref)
    return rows


def print_table(rows: list[dict[str, Any]], columns: list[tuple] = COLUMNS) -> None:
    from rich.console import Console
    from rich.table import Table

    from prunegen.reporting.render import cell

    cols = used(rows, columns)
    table = Table(title="prunegen results")
    for name in ["run", "status", "seeds"] + [c[0] for c in cols]:
        table.add_column(name, overflow="fold")
    for r in rows:
        table.add_row(r["run"], status_cell(r), seeds_cell(r), *[cell(r, n, f) for n, _, f, _ in cols])
    Console(width=220).print(table)


def _hydra_style(argv: list[str]) -> list[str]:
    """`reference=PATH` / `out=DIR` as the --options they are."""
    out = []
    for arg in argv:
        key, eq, value = arg.partition("=")
        out += [f"--{key}", value] if eq and key in ("reference", "out") else [arg]
    return out


def main(argv: list[str] | None = None) -> None:
    import sys

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", help="a run or multirun folder holding metrics.json files")
    parser.add_argument("--out", default=None, help="where to write the table files (default: root)")
    parser.add_argument("--reference", default=None, help="a reference file (YAML/JSON) whose numbers get a column and a curve")
    parser.add_argument("--columns", default=None, help="the columns to show, in this order, comma-separated "
                        f"(of: {', '.join(c[0] for c in COLUMNS)})")
    args = parser.parse_args(_hydra_style(sys.argv[1:] if argv is None else argv))
    chosen = choose_columns(args.columns, columns_with(load_reference(args.reference) if args.reference else None))
    out = Path(args.out or args.root)
    plots = [out / "fid_vs_macs.png", out / "fid_vs_remaining.png"]
    for old in plots:  # a plot with nothing to draw is not written: never claim a stale one
        old.unlink(missing_ok=True)
    rows = write_table(args.root, args.out, args.reference, chosen)
    print_table(rows, chosen)
    drawn = [p.name for p in plots if p.exists()]
    print(f"wrote {out / 'table.md'} (.csv, .tex)" + (f", {' and '.join(drawn)}" if drawn else "; no plot (nothing completed to draw)"))


def compress_rows(record: dict[str, Any]) -> list[list[str]]:
    """Dense, compact and (when exported) the compact int8 file: cost, speed and scores side by side. The int8
    row's time is ONNX Runtime's at one thread in its best form; the others are PyTorch's."""
    ex = record["export"]

    def scores(metrics: dict[str, Any]) -> list[str]:
        return [f"{metrics[k]:.4g}" if isinstance(metrics.get(k), (int, float)) else "-"
                for k in ("fid", "kid_mean", "is_mean", "class_coverage")]

    rows = []
    for side, metrics in [("dense", record.get("dense_metrics", {})), ("compact", record.get("metrics", {}))]:
        e = ex[side]
        rows.append([side, f"{e['macs']:,}", f"{e['params']:,}", f"{e['file_bytes'] / 1024:.0f}", f"{e['latency_ms']:.1f}",
                     *scores(metrics)])
    rows.append(["ratio", f"{ex['macs_ratio']:.1f}x", "", "", f"{ex['speedup']:.2f}x", "", "", "", ""])
    if "int8" in ex:
        q = ex["int8"]
        rows.append(["compact +int8", f"{ex['compact']['macs']:,}", f"{ex['compact']['params']:,}", f"{q['file_bytes'] / 1024:.0f}",
                     f"{q['latency_ms_1_thread']:.1f} (ORT)", *scores(q.get("metrics", {}))])
        slower = q["speedup_vs_best_fp32_1_thread"] < 1
        rows.append(["int8 vs fp32", "", "", f"{q['size_ratio']:.2f}x", f"{q['speedup_vs_best_fp32_1_thread']:.2f}x"
                     + (" (slower: keep fp32)" if slower else ""), "", "", "", ""])
    return rows


def print_compress_table(record: dict[str, Any]) -> None:
    """Dense vs compact after a compress run: cost, speed and scores side by side."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"dense vs compact ({record.get('metrics', {}).get('extractor', '?')} features)")
    for name in ["", "MACs", "params", "file KB", "CPU ms/batch", "FID", "KID", "IS", "classes"]:
        table.add_column(name, justify="right")
    for row in compress_rows(record):
        table.add_row(*row)
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
