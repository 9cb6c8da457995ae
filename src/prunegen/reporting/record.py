"""metrics.json: one record per run with the keys of CONTRACT.md, written atomically."""

import json
import os
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf


def write_json(path: str | Path, obj: Any) -> Path:
    """Write JSON to a temp file beside `path`, then rename: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=2, default=str)
    os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; the user's group reads records like any file
    os.replace(tmp, path)
    return path


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, f"{key}."))
        else:
            out[key] = v
    return out


def hydra_overrides() -> list[str]:
    """The command-line overrides of the running Hydra app ([] outside one, e.g. in tests)."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


@contextmanager
def recorded_run(path: str | Path, record: dict[str, Any], cfg: DictConfig, write: bool = True) -> Iterator[dict[str, Any]]:
    """Run the block, then write `record` to `path` whatever happened: with the wall time and the config,
    and with the error when the block raised (the error is re-raised). `record` starts as `failed`."""
    start = time.time()
    try:
        yield record
    except Exception as err:
        record["error"] = f"{type(err).__name__}: {err}"
        record["traceback"] = traceback.format_exc()
        raise
    finally:
        record["run"]["wall_time_s"] = round(time.time() - start, 2)
        record["config"] = OmegaConf.to_container(cfg, resolve=False)
        if write:
            write_json(path, record)
