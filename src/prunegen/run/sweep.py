"""The end of a sweep, under every launcher: how many points completed, failed (with their first error line)
or were left alone (completed before this invocation), on the console and in `<sweep>/summary.json` and
`summary.txt`. A Hydra callback (configs/hydra/default.yaml), so it runs in the process that launched the sweep."""

import json
import logging
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from prunegen.fileio import write_json

log = logging.getLogger("prunegen")


def summarize(sweep: Path, since: float) -> dict[str, Any]:
    """{completed, failed, interrupted, left_alone, not_started: [...]} of the points under `sweep`."""
    out: dict[str, Any] = {"completed": [], "failed": [], "interrupted": [], "left_alone": [], "other": []}
    for path in sorted(sweep.rglob("metrics.json")):
        if "previous" in path.relative_to(sweep).parts:
            continue
        try:
            record = json.loads(path.read_text())
        except ValueError:
            out["failed"].append({"point": str(path.parent.relative_to(sweep)), "error": "unreadable metrics.json"})
            continue
        point = str(path.parent.relative_to(sweep))
        status = record.get("status")
        started = record.get("started")
        fresh = started is None or time.mktime(time.strptime(started, "%Y-%m-%dT%H:%M:%S")) >= since - 1
        if status == "completed" and not fresh:
            out["left_alone"].append({"point": point})
        elif status in ("completed", "failed", "interrupted"):
            entry = {"point": point}
            if status == "failed":
                entry["error"] = str(record.get("error") or "").strip().splitlines()[0] if record.get("error") else ""
            if status == "interrupted":
                entry["signal"] = record.get("signal")
            out[status].append(entry)
        else:
            out["other"].append({"point": point, "status": status})
    return out


def lines(summary: dict[str, Any], sweep: Path) -> list[str]:
    counts = ", ".join(f"{len(summary[k])} {k.replace('_', ' ')}" for k in ("completed", "failed", "interrupted", "left_alone")
                       if summary[k] or k in ("completed", "failed"))
    text = [f"[prunegen] sweep {sweep}: {counts}"]
    text += [f"  failed {e['point']}: {e['error']}" for e in summary["failed"]]
    text += [f"  interrupted {e['point']}: {e['signal']}" for e in summary["interrupted"]]
    return text


class SweepSummary(Callback):
    """Hydra callback: writes and prints the summary when a multirun ends."""

    def __init__(self) -> None:
        self.start = time.time()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.start = time.time()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep = Path(config.hydra.sweep.dir)
        if not sweep.is_dir():
            return
        summary = summarize(sweep, self.start)
        text = lines(summary, sweep)
        write_json(sweep / "summary.json", summary)
        (sweep / "summary.txt").write_text("\n".join(text) + "\n")
        for line in text:
            log.info(line)
