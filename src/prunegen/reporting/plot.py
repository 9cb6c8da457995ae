"""The sweep's plots: FID vs true MACs with the Pareto frontier, and FID (and FID / dense) vs weights
remaining with a paper's curve beside ours. One series per method, each point marked with its sparsity."""

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

MARKERS = "ov^D<>pPX*h"


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not dominated in (fewer MACs, lower FID), sorted by MACs."""
    front, best = [], float("inf")
    for macs, fid in sorted(points):
        if fid < best:
            front.append((macs, fid))
            best = fid
    return front


def by_series(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rows grouped by their readable series name (the method; dense runs are `dense`)."""
    series: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        series.setdefault(r.get("series") or r["run"], []).append(r)
    return series


def sparsity_text(row: dict[str, Any]) -> str:
    """The point's sparsity as it was asked for (the target; the achieved one when there is none)."""
    value = row.get("target sparsity")
    value = row.get("sparsity") if value is None else value
    return "" if value is None else f"{value:.3g}"


def _draw(ax: Any, xs: list[float], ys: list[float], errs: list[float], marks: list[str], i: int, name: str | None) -> None:
    dense = name == "dense"
    ax.errorbar(xs, ys, yerr=errs, fmt="" if dense else "-", marker="s" if dense else MARKERS[i % len(MARKERS)],
                capsize=3, color=plt.cm.tab10(i % 10), label=name)
    for x, y, text in zip(xs, ys, marks):
        if text:
            ax.annotate(text, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=6, color=plt.cm.tab10(i % 10))


def _legend(fig: Any, axes: list[Any], title: str) -> None:
    axes[-1].legend(*axes[0].get_legend_handles_labels(), fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                    title=title, title_fontsize=7)
    fig.tight_layout()


def plot_fid_vs_macs(rows: list[dict[str, Any]], path: str | Path) -> Path | None:
    """Left: FID vs MACs (log-log). Right, when runs carry their teacher's score: FID / dense of the same
    seed (linear), where the differences between healthy compact generators are visible."""
    rows = [r for r in rows if r.get("FID") is not None and r.get("MACs") is not None]
    if not rows:
        return None
    ratios = any(r.get("FID / dense") is not None for r in rows)
    fig, axes = plt.subplots(1, 2 if ratios else 1, figsize=(16 if ratios else 11, 5), squeeze=False)
    axes = axes[0]
    for i, (name, members) in enumerate(by_series(rows).items()):
        members.sort(key=lambda r: r["MACs"])
        marks = [sparsity_text(r) for r in members]
        _draw(axes[0], [r["MACs"] for r in members], [r["FID"] for r in members], [r.get("FID std") or 0 for r in members], marks, i, name)
        rel = [r for r in members if r.get("FID / dense") is not None]
        if ratios and rel:
            _draw(axes[1], [r["MACs"] for r in rel], [r["FID / dense"] for r in rel], [r.get("FID / dense std") or 0 for r in rel],
                  [sparsity_text(r) for r in rel], i, None)
    for r in rows:
        if not r["pruned"]:
            axes[0].axhline(r["FID"], color="gray", linestyle="--", linewidth=0.8)
    front = pareto_front([(r["MACs"], r["FID"]) for r in rows])
    axes[0].plot(*zip(*front), color="black", linewidth=1, label="Pareto frontier")
    for a in axes:
        a.set_xscale("log")
        a.set_xlabel("MACs per image (true, channels removed)")
    axes[0].set_yscale("log")  # FIDs of collapsed and healthy generators differ by orders of magnitude
    axes[0].set_ylabel(f"FID ({_extractor(rows)} features)")
    if ratios:
        axes[1].axhline(1.0, color="gray", linestyle="--", linewidth=0.8)
        axes[1].set_ylabel("FID / dense FID of the same seed")
    _legend(fig, list(axes), "method (points labelled by sparsity)")
    return _save(fig, path)


def plot_fid_vs_remaining(rows: list[dict[str, Any]], path: str | Path, reference: Any = None) -> Path | None:
    """FID and FID / dense against the fraction of weights remaining (100% at the left), with the
    reference's curve (its own FID / its own dense value on the right) drawn beside ours."""
    rows = [r for r in rows if r.get("FID") is not None and r.get("remaining") is not None]
    ref = reference if reference is not None and reference.metric == "fid" else None
    if not rows and ref is None:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(16, 5), squeeze=False)
    axes = axes[0]
    series = by_series(rows)
    for i, (name, members) in enumerate(series.items()):
        members.sort(key=lambda r: -r["remaining"])
        xs = [100 * r["remaining"] for r in members]
        _draw(axes[0], xs, [r["FID"] for r in members], [r.get("FID std") or 0 for r in members],
              [sparsity_text(r) for r in members], i, name)
        rel = [r for r in members if r.get("FID / dense") is not None]
        _draw(axes[1], [100 * r["remaining"] for r in rel], [r["FID / dense"] for r in rel],
              [r.get("FID / dense std") or 0 for r in rel], [sparsity_text(r) for r in rel], i, None)
    if ref is not None:
        xs, ys = [100 * p[0] for p in ref.points], [p[1] for p in ref.points]
        label = f"{ref.name} (paper; {ref.extractor or 'its'} features)"
        axes[0].plot(xs, ys, "k--x", linewidth=1, label=label)
        if ref.dense():
            axes[1].plot(xs, [y / ref.dense() for y in ys], "k--x", linewidth=1)
    ticks = sorted({round(100 * r["remaining"], 1) for r in rows} | {round(100 * p[0], 1) for p in (ref.points if ref else [])})
    for a in axes:
        a.set_xscale("log")
        a.invert_xaxis()
        a.set_xlabel("weights remaining (%)")
        if len(ticks) <= 16:
            a.set_xticks(ticks)
        a.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        a.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes[0].set_yscale("log")
    axes[0].yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    axes[0].yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    axes[0].set_ylabel(f"FID ({_extractor(rows)} features{'; the paper: its own' if ref else ''})")
    axes[1].axhline(1.0, color="gray", linestyle="--", linewidth=0.8)
    axes[1].set_ylabel("FID / dense FID (same run, or the paper's dense)")
    _legend(fig, list(axes), "method (points labelled by sparsity)")
    return _save(fig, path)


def _extractor(rows: list[dict[str, Any]]) -> str:
    return next((str(r["extractor"]) for r in rows if r.get("extractor")), "")


def _save(fig: Any, path: str | Path) -> Path:
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
