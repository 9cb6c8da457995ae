"""metrics.json: one record per run with the keys of CONTRACT.md, written atomically."""

import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from prunegen.fileio import write_json


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
