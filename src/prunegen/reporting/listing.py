"""prunegen-runs: the runs under a folder, what they are and how they ended, without pinning folders.

    prunegen-runs [DIR]              every run (status, attempts, experiment and overrides, FID, age), newest last
    prunegen-runs diff A B           the config keys and the metrics where two runs differ
    prunegen-runs latest [DIR]       the newest run's folder (for scripts: ckpt_path=$(prunegen-runs latest)/checkpoints/last.ckpt)

No torch: it reads metrics.json and .hydra/config.yaml only.
"""

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from prunegen.reporting.runs import status_of
from prunegen.run.record import flatten


def run_folders(root: str | Path) -> list[Path]:
    """Folders holding a run (its metrics.json or its stored config), oldest first by last change."""
    root = Path(root)
    found = {p.parent for p in root.rglob("metrics.json")} | {p.parent.parent for p in root.rglob(".hydra/config.yaml")}
    found = {f for f in found if "previous" not in f.relative_to(root).parts}  # resume=never's moved-aside files
    return sorted(found, key=_changed)


def _changed(folder: Path) -> float:
    files = [folder / "metrics.json", folder / "export.json", folder / ".hydra" / "config.yaml"]
    return max((f.stat().st_mtime for f in files if f.is_file()), default=folder.stat().st_mtime)


def _record(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def describe(folder: Path, now: float | None = None) -> dict[str, Any]:
    """One run as a row: folder, status, attempts, identity (experiment, overrides), FID, age."""
    record = _record(folder)
    status, detail = status_of(record) if record else ("started", "no metrics.json yet")
    overrides = (record.get("run") or {}).get("overrides") or []
    experiment = next((o.split("=", 1)[1] for o in overrides if o.startswith("experiment=")), None)
    fid = (record.get("metrics") or {}).get("fid")
    return {"folder": str(folder), "status": status, "detail": detail, "attempts": len(record.get("attempts") or []),
            "experiment": experiment, "overrides": [o for o in overrides if not o.startswith(("experiment=", "hydra"))],
            "fid": fid, "age": _age((now or time.time()) - _changed(folder))}


def config_of(folder: Path) -> dict[str, Any]:
    stored = folder / ".hydra" / "config.yaml"
    if stored.is_file():
        from omegaconf import OmegaConf

        return flatten(OmegaConf.to_container(OmegaConf.load(stored), resolve=False))
    return flatten(_record(folder).get("config") or {})


def diff(a: Path, b: Path) -> list[str]:
    """`key: A -> B` for each config key and metric that differs (paths and timings left out)."""
    lines = []
    ca, cb = config_of(a), config_of(b)
    for key in sorted(set(ca) | set(cb)):
        if not key.startswith(("paths.", "hydra.")) and ca.get(key, "<unset>") != cb.get(key, "<unset>"):
            lines.append(f"config {key}: {ca.get(key, '<unset>')!r} -> {cb.get(key, '<unset>')!r}")
    ma, mb = (flatten(_record(f).get("metrics") or {}) for f in (a, b))
    for key in sorted(set(ma) | set(mb)):
        if key.endswith(("_version", "weights")) or ma.get(key) == mb.get(key):
            continue
        va, vb = ma.get(key), mb.get(key)
        if isinstance(va, float) and isinstance(vb, float):
            lines.append(f"metric {key}: {va:.4g} -> {vb:.4g} ({vb / va:.3g}x)" if va else f"metric {key}: {va:.4g} -> {vb:.4g}")
        else:
            lines.append(f"metric {key}: {va!r} -> {vb!r}")
    return lines


def latest(root: str | Path) -> Path:
    folders = run_folders(root)
    if not folders:
        raise SystemExit(f"prunegen-runs: no runs under {root}")
    return folders[-1]


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["diff"]:
        parser = argparse.ArgumentParser(prog="prunegen-runs diff", description="config keys and metrics that differ")
        parser.add_argument("a")
        parser.add_argument("b")
        args = parser.parse_args(argv[1:])
        print("\n".join(diff(Path(args.a), Path(args.b))) or "no difference in config or metrics")
        return
    if argv[:1] == ["latest"]:
        print(latest(argv[1] if len(argv) > 1 else "outputs"))
        return
    parser = argparse.ArgumentParser(prog="prunegen-runs", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", nargs="?", default="outputs", help="a folder of runs and sweeps (default: outputs)")
    args = parser.parse_args(argv)
    rows = [describe(f) for f in run_folders(args.root)]
    if not rows:
        print(f"no runs under {args.root}")
        return
    for r in rows:
        identity = " ".join(([f"experiment={r['experiment']}"] if r["experiment"] else []) + r["overrides"]) or "(defaults)"
        fid = f"FID {r['fid']:.4g}" if isinstance(r["fid"], (int, float)) else "FID -"
        attempts = f" ({r['attempts']} attempts)" if r["attempts"] > 1 else ""
        status = r["status"] + (f": {r['detail']}" if r["detail"] and r["status"] != "completed" else "")
        print(f"{r['folder']}  {status}{attempts}  {fid}  {r['age']} ago  {identity}")


if __name__ == "__main__":
    main()
