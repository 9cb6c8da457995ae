"""FID vs true MACs with the Pareto frontier and the dense model as a reference line."""

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not dominated in (fewer MACs, lower FID), sorted by MACs."""
    front, best = [], float("inf")
    for macs, fid in sorted(points):
        if fid < best:
            front.append((macs, fid))
            best = fid
    return front


def plot_fid_vs_macs(rows: list[dict[str, Any]], path: str | Path) -> Path:
    rows = [r for r in rows if r["FID"] is not None and r["MACs"] is not None]
    fig, ax = plt.subplots(figsize=(11, 5))
    for r in rows:
        label = f"{r['run']} ({r['classes']:.1f} classes)" if r["classes"] is not None else r["run"]
        marker = "s" if not r["pruned"] else "o"
        ax.errorbar(r["MACs"], r["FID"], yerr=r.get("FID std"), fmt=marker, capsize=3, label=label)
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
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="run (mean class coverage)", title_fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
