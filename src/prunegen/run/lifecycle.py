"""A run folder is a run: its identity (the composed config), its attempts, its resume point.

Re-running the same command in a folder (by hand, or a requeued SLURM job) resumes from the folder's
epoch-boundary `last.ckpt`; a different configuration there is refused before anything is written; a
completed run is left as it is. Every attempt is recorded in `metrics.json` (`attempts`), and a run
stopped by a signal is recorded as `interrupted` with the signal and the last checkpointed epoch.

This module imports no torch or Lightning, so configuration errors surface in about a second.
"""

import json
import logging
import os
import shutil
import signal
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from prunegen.choices import check_choice
from prunegen.fileio import STOP_SIGNALS, write_json
from prunegen.run.record import flatten

log = logging.getLogger("prunegen")
RESUME_MODES = ("auto", "never")
# Keys that cannot change a result: they may differ between the attempts of one run.
NOT_IDENTITY = (
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.log_every_n_steps",
    "logger",
    "resume",
    "ckpt_path",
    "paths",
    "optimized_metric",
    "hydra",
    "callbacks.model_checkpoint",  # how many checkpoints are kept, and how they are written
    "label",  # the run's name in tables
)


class RunInterrupted(BaseException):
    """Raised by the signal handler: the run stops at once and is recorded as interrupted. A BaseException,
    like KeyboardInterrupt, so library code that catches `Exception` cannot turn it into another error (a
    SIGTERM inside `inspect.getfullargspec`, which Lightning's `self.log` calls, came out as a TypeError)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")


def global_rank() -> int:
    """This process's rank, read as Lightning reads it (0 outside distributed runs)."""
    for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        if key in os.environ:
            return int(os.environ[key])
    return 0


def changes_result(key: str) -> bool:
    """Whether a (flat, dotted) config key is part of a run's identity: not one of `NOT_IDENTITY` or under it."""
    return not any(key == n or key.startswith(f"{n}.") for n in NOT_IDENTITY)


def identity_diff(stored: Any, current: Any) -> list[str]:
    """The keys (with both values) where two configs of one folder differ in a way that changes a result."""
    a, b = (flatten(OmegaConf.to_container(c, resolve=False) if isinstance(c, DictConfig) else c) for c in (stored, current))
    keys = sorted(k for k in set(a) | set(b) if changes_result(k) and _same(k, a.get(k, "<unset>")) != _same(k, b.get(k, "<unset>")))
    return [f"{k}: {a.get(k, '<unset>')!r} -> {b.get(k, '<unset>')!r}" for k in keys]


# Run folders started before the configs were flattened (issue 18) store other spellings of the same run:
# distillation's timing as an interpolation into the pruning group (now null: the pruning schedule's first
# round), and structured pruning's threshold keys at the values the callback takes when they are absent.
EARLIER_SPELLINGS: dict[str, dict[Any, Any]] = {"distill.snapshot_epoch": {"${oc.select:pruning.start_epoch,0}": None}}
ABSENT_MEANS = {"label": None,
                "pruning.amount": "sparsity", "pruning.alpha": 1.0, "pruning.reference": "mean", "pruning.max_sparsity": None,
                "metrics.min_extractor_accuracy": 0.8, "metrics.min_extractor_images": 50,
                "export.quantize": "none", "export.int8_activations": True, "export.int8_tolerance": 0.03,
                "export.int8_form": "auto", "export.calibration.method": "minmax", "export.calibration.samples": 512}


def _same(key: str, value: Any) -> Any:
    """What must match for `key`: a `_target_` by its class name (so a run started before a module moved,
    prunegen.rng.RNGStateCallback -> prunegen.run.rng.RNGStateCallback, resumes after the move), and the
    earlier spellings above as what they mean."""
    if key.endswith("_target_") and isinstance(value, str):
        return value.rsplit(".", 1)[-1]
    if value == "<unset>" and key in ABSENT_MEANS:
        return ABSENT_MEANS[key]
    return EARLIER_SPELLINGS.get(key, {}).get(value, value) if isinstance(value, str) else value


class RunFolder:
    """One run's folder: `.hydra/config.yaml` (its identity), `metrics.json` (its record and attempts; another
    name for prunegen-export's `export.json`), `checkpoints/last.ckpt` (its resume point)."""

    def __init__(self, path: str | Path, cfg: DictConfig, resume: str = "auto", record_name: str = "metrics.json") -> None:
        if not Path(resume).is_file():
            check_choice("resume", resume, RESUME_MODES, extra="or a checkpoint file")
        self.path, self.cfg, self.resume = Path(path), cfg, resume
        self.config_file = self.path / ".hydra" / "config.yaml"
        self.record_file = self.path / record_name
        self.last_ckpt = self.path / "checkpoints" / "last.ckpt"
        self.previous: dict[str, Any] = json.loads(self.record_file.read_text()) if self.record_file.is_file() else {}

    def check_identity(self) -> None:
        """Refuse (before writing anything) a folder that holds a run of another configuration."""
        if not self.config_file.is_file():
            return
        diff = identity_diff(OmegaConf.load(self.config_file), self.cfg)
        if diff and self.failed_before_training():
            log.warning(f"{self.path}: its earlier attempts failed before their first checkpoint, so this corrected "
                        f"configuration takes the folder over (their record stays in metrics.json `attempts`):\n  "
                        + "\n  ".join(diff))
            self.config_file.unlink()  # save_identity writes the new one; the old one is in the record's `config`
            return
        if diff:
            raise ValueError(
                f"{self.path} already holds a run of another configuration; nothing was changed there. "
                f"Keys that differ (stored -> given):\n  " + "\n  ".join(diff)
                + "\nUse another folder (hydra.run.dir=...), or the stored configuration to resume it."
            )

    def failed_before_training(self) -> bool:
        """Whether no attempt here got as far as a checkpoint (so nothing of it can be resumed or lost)."""
        trained = (self.path / "checkpoints").is_dir() and any((self.path / "checkpoints").glob("*.ckpt"))
        return not trained and self.previous.get("status") != "completed"

    def move_aside(self) -> Path | None:
        """`resume=never` in a used folder: its earlier files go to `previous/<time>/` (nothing is deleted), the
        logs stay (this attempt appends to them). Returns where they went, None when there was nothing."""
        keep = {"previous", ".hydra"}
        entries = [p for p in self.path.iterdir() if p.name not in keep and p.suffix != ".log"] if self.path.is_dir() else []
        entries += [p for p in (self.config_file, self.config_file.parent / "overrides.yaml") if p.is_file()]
        if not entries:
            return None
        dest = self.path / "previous" / time.strftime("%Y-%m-%d_%H-%M-%S")
        for p in entries:
            target = dest / p.relative_to(self.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(p), str(target))
        self.previous = {}
        return dest

    @property
    def completed(self) -> bool:
        return self.previous.get("status") == "completed"

    def resume_from(self, ckpt_path: str | None) -> str | None:
        """The checkpoint to resume from: `ckpt_path`, else `resume=<file>`, else (auto) the newest of this folder's
        checkpoints that loads (last.ckpt, else the epoch before it), saying which were skipped and why."""
        from prunegen.run.checkpoint import NotACheckpoint, loadable, newest_loadable

        given = ckpt_path or (self.resume if self.resume not in RESUME_MODES else None)
        if given:
            why = loadable(given)
            if why is not None:
                raise NotACheckpoint(why)
            return str(given)
        if self.resume == "auto" and (self.path / "checkpoints").is_dir():
            found, skipped = newest_loadable(self.path / "checkpoints")
            for line in skipped:
                log.warning(f"resume: {line}")
            if found is not None and skipped:
                log.warning(f"resume: from {found.name}, the newest checkpoint that loads")
            return str(found) if found is not None else None
        return None

    def save_identity(self, overrides: list[str]) -> None:
        """Write the run's config once, on its first attempt (Hydra's own copy is switched off for train)."""
        if self.config_file.is_file():
            return
        self.config_file.parent.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.cfg, self.config_file)
        (self.config_file.parent / "overrides.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(list(overrides))))

    def last_epoch(self) -> int | None:
        """The epoch of the checkpoint a re-run would resume from (None when there is none)."""
        if not self.last_ckpt.is_file():
            return None
        from prunegen.run.checkpoint import torch_load  # only after a failure or a signal: torch is loaded by then

        try:
            return int(torch_load(self.last_ckpt, mmap=True)["epoch"])
        except Exception:  # a checkpoint being written when the signal came
            return None

    def attempts(self) -> list[dict[str, Any]]:
        """Earlier attempts: the previous record's list, or the previous record itself summarised."""
        if not self.previous:
            return []
        if "attempts" in self.previous:
            return list(self.previous["attempts"])
        return [summary(self.previous)]


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """The part of a record that tells what an attempt did."""
    keys = ("status", "started", "error", "signal", "last_epoch", "resumed_from")
    out = {k: record[k] for k in keys if k in record}
    out["overrides"] = record.get("run", {}).get("overrides")
    out["wall_time_s"] = record.get("run", {}).get("wall_time_s")
    return out


@contextmanager
def signals_raise() -> Iterator[None]:
    """SIGTERM, SIGINT and SIGUSR2 stop the run with `RunInterrupted`. A handler already there (submitit's
    requeue on SIGUSR2, its SIGTERM bypass) runs first: submitit requeues the job and exits by itself."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}  # held back while a file is written (fileio)

    def handler(signum: int, frame: Any) -> None:
        handler.signum = signum  # type: ignore[attr-defined]  # read by `attempt` when the run ends
        prev = previous[signum]
        if callable(prev) and prev is not signal.default_int_handler:
            prev(signum, frame)
        raise RunInterrupted(signum)

    handler.signum = None  # type: ignore[attr-defined]
    for s in STOP_SIGNALS:
        signal.signal(s, handler)
    try:
        yield handler
    finally:
        for s, prev in previous.items():
            signal.signal(s, prev)


@contextmanager
def attempt(folder: RunFolder, record: dict[str, Any], write: bool = True) -> Iterator[dict[str, Any]]:
    """Run one attempt. `record` is written to metrics.json when the block ends, whatever happened:
    `completed` only when the block returned (it sets nothing itself), `interrupted` (signal, last
    epoch) on a signal, `failed` (error, traceback) on an error. Earlier attempts are kept in `attempts`."""
    start = time.time()
    record.setdefault("run", {})
    record["started"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(start))
    earlier = folder.attempts()
    with signals_raise() as handler:
        try:
            yield record
            record["status"] = "completed"
        except BaseException as err:
            signum = getattr(err, "signum", None) or (handler.signum if handler is not None else None)
            if signum is not None:
                record.update(status="interrupted", signal=signal.Signals(signum).name, last_epoch=folder.last_epoch())
            else:
                record.update(status="failed", error=f"{type(err).__name__}: {err}", traceback=traceback.format_exc())
                log.error(f"{folder.path}: failed: {record['error']}\n{record['traceback']}")  # into <run>/<task>.log too
                epoch = folder.last_epoch()
                if epoch is not None:
                    record["error"] += (
                        f"\nThe checkpoint of epoch {epoch} is kept: {folder.last_ckpt}. Re-run the same command to "
                        f"resume from it, or score it with `prunegen-eval ckpt_path={folder.last_ckpt}`."
                    )
            raise
        finally:
            record["run"]["wall_time_s"] = round(time.time() - start, 2)
            record["config"] = OmegaConf.to_container(folder.cfg, resolve=False)
            record["attempts"] = earlier + [summary(record)]
            if write:
                write_json(folder.record_file, record)
