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
    rows = [r for r in rows if r["FID"] is not None and r["MACs"] is not None]
    fig, ax = plt.subplots(figsize=(11, 5))
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
        ax.errorbar([r["MACs"] for r in members], [r["FID"] for r in members], yerr=[r.get("FID std") or 0 for r in members],
                    fmt="" if dense else "-", marker="s" if dense else MARKERS[i % len(MARKERS)], capsize=3,
                    color=plt.cm.tab10(i % 10), label=name)
    for r in rows:
        if not r["pruned"]:
            ax.axhline(r["FID"], color="gray", linestyle="--", linewidth=0.8)
    front = pareto_front([(r["MACs"], r["FID"]) for r in rows])
    if front:
        ax.plot(*zip(*front), color="black", linewidth=1, label="Pareto frontier")
    ax.set_xscale("log")
    ax.set_yscale("log")  # FIDs of collapsed and healthy generators differ by orders of magnitude
    ax.set_xlabel("MACs per image (true, channels removed)")
    extractor = next((r["extractor"] for r in rows if r.get("extractor")), "")
    ax.set_ylabel(f"FID ({extractor} features)")
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="method, points by sparsity (mean class coverage)", title_fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
