"""The pieces of a run's record: its command-line overrides (one parser) and flat dotted keys. The record
itself is written by `prunegen.run.lifecycle.attempt`."""

from typing import Any

from hydra.core.hydra_config import HydraConfig


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


def parse_overrides(overrides: list[str]) -> dict[str, str | None]:
    """Hydra's command-line overrides as {key: value}: ['+a.b=1', '~c'] -> {'a.b': '1', 'c': None} (a deletion
    has no value). The one parser of overrides: checks, loggers and tables read them through it."""
    out: dict[str, str | None] = {}
    for item in overrides:
        key, eq, value = item.partition("=")
        out[key.lstrip("+~")] = value if eq else None
    return out


def hydra_overrides() -> list[str]:
    """The command-line overrides of the running Hydra app ([] outside one, e.g. in tests)."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
