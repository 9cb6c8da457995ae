"""FID vs true MACs with the Pareto frontier and the dense model as a reference line."""

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


MARKERS = "ov^D<>pPX*h"


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not dominated in (fewer MACs, lower FID), sorted by MACs."""
    front, best = [], float("inf")
    for macs, fid in sorted(points):
        if fid < best:
            front.append((macs, fid))
            best = fid
    return front


def series_name(run: str) -> str:
    """A method's name: the run's label without its sparsity (the points of one series differ by it)."""
    return " ".join(o for o in run.split() if not o.startswith("pruning.final_sparsity=")) or run


def plot_fid_vs_macs(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Left: FID vs MACs (log-log, every run). Right, when runs carry their teacher's score: FID / dense of
    the same seed (linear), where the differences between healthy compact generators are visible."""
    rows = [r for r in rows if r["FID"] is not None and r["MACs"] is not None]
    ratios = any(r.get("FID / dense") is not None for r in rows)
    fig, axes = plt.subplots(1, 2 if ratios else 1, figsize=(16 if ratios else 11, 5), squeeze=False)
    ax, ax_ratio = axes[0][0], axes[0][-1] if ratios else None
    series: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        series.setdefault(("dense: " if not r["pruned"] else "") + series_name(r["run"]), []).append(r)
    for i, (name, members) in enumerate(series.items()):
        members.sort(key=lambda r: r["MACs"])
        classes = sorted(r["classes"] for r in members if r["classes"] is not None)
        if classes:
            low, high = f"{classes[0]:.1f}", f"{classes[-1]:.1f}"
            name = f"{name} ({low if low == high else f'{low}–{high}'} classes)"
        dense = name.startswith("dense")
        style = dict(fmt="" if dense else "-", marker="s" if dense else MARKERS[i % len(MARKERS)], capsize=3, color=plt.cm.tab10(i % 10))
        ax.errorbar([r["MACs"] for r in members], [r["FID"] for r in members], yerr=[r.get("FID std") or 0 for r in members],
                    label=name, **style)
        relative = [r for r in members if r.get("FID / dense") is not None]
        if ax_ratio is not None and relative:
            ax_ratio.errorbar([r["MACs"] for r in relative], [r["FID / dense"] for r in relative],
                              yerr=[r.get("FID / dense std") or 0 for r in relative], **style)
    for r in rows:
        if not r["pruned"]:
            ax.axhline(r["FID"], color="gray", linestyle="--", linewidth=0.8)
    front = pareto_front([(r["MACs"], r["FID"]) for r in rows])
    if front:
        ax.plot(*zip(*front), color="black", linewidth=1, label="Pareto frontier")
    extractor = next((r["extractor"] for r in rows if r.get("extractor")), "")
    for a in axes[0]:
        a.set_xscale("log")
        a.set_xlabel("MACs per image (true, channels removed)")
    ax.set_yscale("log")  # FIDs of collapsed and healthy generators differ by orders of magnitude
    ax.set_ylabel(f"FID ({extractor} features)")
    if ax_ratio is not None:
        ax_ratio.axhline(1.0, color="gray", linestyle="--", linewidth=0.8)
        ax_ratio.set_ylabel("FID / dense FID of the same seed (distilled runs)")
    axes[0][-1].legend(*ax.get_legend_handles_labels(), fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                       title="method, points by sparsity (mean class coverage)", title_fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
