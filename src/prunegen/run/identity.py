"""A run's identity decides its folder: `outputs/train/runs/<experiment or model>/<hash>`, the hash of the
composed config without the keys that cannot change a result (`lifecycle.NOT_IDENTITY`). The same command
finds its run again without a pinned folder (and resumes it, or leaves it alone when completed); another
configuration gets its own; a sweep places each point by its identity, so re-running or extending it
runs only the points not yet completed. The resolvers `run_folder`, `sweep_folder` and `sweep_point` are
used by configs/hydra/default.yaml; a pinned `hydra.run.dir` / `hydra.sweep.dir` wins as before."""

import os
import shlex
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from prunegen.fileio import content_hash
from prunegen.run.lifecycle import changes_result
from prunegen.run.record import flatten


def identity_hash(cfg: DictConfig | dict[str, Any]) -> str:
    """10 hex digits of the config's result-changing keys (unresolved: `${...}` stays as written)."""
    plain = OmegaConf.to_container(cfg, resolve=False) if isinstance(cfg, DictConfig) else cfg
    flat = {k: v for k, v in flatten({k: v for k, v in plain.items() if k != "hydra"}).items() if changes_result(k)}
    return content_hash(sorted((k, repr(v)) for k, v in flat.items()))[:10]


def _name(root: DictConfig) -> str:
    choices = OmegaConf.select(root, "hydra.runtime.choices", default=None) or {}
    return str(choices.get("experiment") or choices.get("model") or "run").replace("/", "-")


def run_folder(stamp: str, *, _root_: DictConfig) -> str:
    """hydra.run.dir's last part: `<experiment or model>/<hash>` for prunegen-train, else the time stamp."""
    return f"{_name(_root_)}/{identity_hash(_root_)}" if _root_.get("task_name") == "train" else stamp


def sweep_folder(stamp: str, *, _root_: DictConfig) -> str:
    """hydra.sweep.dir's last parts: `sweeps/<experiment or model>` for prunegen-train, else `multiruns/<stamp>`."""
    return f"sweeps/{_name(_root_)}" if _root_.get("task_name") == "train" else f"multiruns/{stamp}"


def sweep_point(num: Any, *, _root_: DictConfig) -> str:
    """hydra.sweep.subdir: the point's identity hash for prunegen-train (so re-runs find it), else the job number."""
    return identity_hash(_root_) if _root_.get("task_name") == "train" else str(num)


def update_latest(folder: str | Path) -> None:
    """`<runs>/latest` -> the run folder, when it is an identity-named one (`.../runs/<name>/<hash>`)."""
    folder = Path(folder)
    runs = folder.parent.parent
    if runs.name not in ("runs", "sweeps"):
        return
    link, tmp = runs / "latest", runs / f".latest.{os.getpid()}"
    try:
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(folder.relative_to(runs))
        os.replace(tmp, link)
    except OSError:  # a file system without links: the folder is still found by its identity
        tmp.unlink(missing_ok=True)


def resume_command() -> str:
    """The command line that resumes this run (the same one: its identity finds the folder)."""
    prog = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "prunegen-train"
    return shlex.join([prog if prog.startswith("prunegen") else "prunegen-train", *sys.argv[1:]])
