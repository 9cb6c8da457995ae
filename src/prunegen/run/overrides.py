"""Command-line overrides checked before Hydra runs and before torch is imported: an error names the key
and the fix in about a second (did-you-mean in place of Hydra's `+key` advice, the choices of a group,
"choose `pruning=NAME` first" for a key of a group left at none, numeric keys out of range,
`trainer=gpu` without a GPU, `hydra/launcher=slurm` without SLURM).

    @preflight("train")
    @hydra.main(..., config_name="train")
    def main(cfg): ...
"""

import difflib
import functools
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from prunegen import CONFIG_DIR

# Numeric keys by the last part of their name: (lowest allowed, whether the bound itself is allowed, what it is)
RANGES: dict[str, tuple[float, bool, str]] = {
    "lr": (0, False, "a learning rate"), "lr_g": (0, False, "a learning rate"), "lr_d": (0, False, "a learning rate"),
    "batch_size": (1, True, "a batch size"), "seed": (0, True, "a seed"), "num_samples": (10, True, "a sample count"),
    "max_epochs": (1, True, "an epoch count"), "num_images": (1, True, "an image count"),
    "final_sparsity": (0, True, "a fraction in [0, 1)"), "image_size": (8, True, "an image size"),
}


def _groups() -> dict[str, list[str]]:
    """{group path: [options]} of the config tree (`pruning`, `metrics/extractor`, `hydra/launcher`, ...);
    a group's options include those of its sub-folders (`experiment=paper/gan_lth_sngan_cifar10`)."""
    root = Path(CONFIG_DIR)
    out: dict[str, list[str]] = {}
    for folder in (p for p in root.rglob("*") if p.is_dir()):
        options = sorted(f.relative_to(folder).with_suffix("").as_posix() for f in folder.rglob("*.yaml"))
        if options:
            out[folder.relative_to(root).as_posix()] = options
    return out


def _nearest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=2, cutoff=0.6)
    return f" Did you mean {' or '.join(close)}?" if close else ""


def _split(arg: str) -> tuple[str, str] | None:
    if arg.startswith("-") or "=" not in arg:
        return None
    key, value = arg.split("=", 1)
    return key.lstrip("+~"), value


def _first(value: str) -> str:
    """A multirun value's first element (`0.5,0.75` -> `0.5`; lists and sweeps functions kept whole)."""
    if value.startswith(("[", "{", "range(", "choice(", "interval(", "glob(")) or "," not in value:
        return value
    return value.split(",", 1)[0]


def has_gpu() -> bool:
    """An NVIDIA GPU, seen without importing torch."""
    return Path("/proc/driver/nvidia").exists() or any(Path("/dev").glob("nvidia[0-9]*"))


def check_groups(overrides: list[tuple[str, str]], groups: dict[str, list[str]]) -> list[str]:
    """Unknown options of a group (`pruning=strutured`), with the group's choices."""
    errors = []
    for key, value in overrides:
        options = groups.get(key)
        if not options or key.startswith("hydra/"):  # Hydra's plugins add options of their own (submitit_local, ...)
            continue
        for v in value.strip("[]").split(",") if value.startswith("[") else [value]:
            if v and v not in options and v not in ("null", "none"):
                errors.append(f"{key}={v}: no such option. The choices for {key}: {', '.join(options)}.{_nearest(v, options)}")
    return errors


def check_environment(overrides: list[tuple[str, str]]) -> list[str]:
    errors = []
    chosen = dict(overrides)
    if chosen.get("trainer") in ("gpu", "ddp") and not has_gpu():
        errors.append(f"trainer={chosen['trainer']}: this machine has no GPU (no /dev/nvidia*). Use trainer=cpu here, "
                      "or run on a GPU node (hydra/launcher=slurm).")
    if chosen.get("hydra/launcher") == "slurm" and shutil.which("sbatch") is None:
        errors.append("hydra/launcher=slurm: no SLURM here (sbatch is not on PATH). Use hydra/launcher=submitit_local "
                      "to try the same jobs on this machine, or submit from a cluster's login node.")
    return errors


def check_keys(cfg: DictConfig, overrides: list[tuple[str, str]], groups: dict[str, list[str]]) -> list[str]:
    """Unknown keys (did-you-mean in their node), keys of a group left at none, numbers out of range."""
    errors = []
    for key, _ in overrides:
        if key.startswith("hydra") or key in groups or "/" in key:
            continue
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(cfg, parent, default=None) if parent else cfg
        top = key.split(".")[0]
        if parent and top in groups and (node is None or (parent == top and isinstance(node, DictConfig) and not len(node))):
            errors.append(f"{key}: {top} is none here, so it has no keys. Choose {top}=NAME first "
                          f"({', '.join(groups[top])}), then set {key}.")
        elif isinstance(node, DictConfig) and leaf not in node:
            errors.append(f"{key}: no such key in {parent or 'the config'}.{_nearest(leaf, [str(k) for k in node])} "
                          f"(its keys: {', '.join(str(k) for k in node)}; +{key}=... adds a new one)")
    errors += check_values(cfg)
    return errors


def check_values(cfg: DictConfig, name: str | None = None) -> list[str]:
    """Numeric keys against RANGES (the composed config: experiment files included); `name`: the key of a
    one-value config `{x: value}` (a sweep's value)."""
    errors = []
    if name is not None:
        cfg = OmegaConf.create(OmegaConf.from_dotlist([f"{name}={cfg.x}"]))

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, DictConfig):
            for k in node:
                try:
                    value = node[k]
                except Exception:  # an interpolation that only resolves inside a running Hydra app
                    continue
                walk(value, f"{prefix}{k}.")
            return
        leaf = prefix[:-1].rsplit(".", 1)[-1]
        if leaf in RANGES and isinstance(node, (int, float)) and not isinstance(node, bool):
            low, inclusive, what = RANGES[leaf]
            if node < low or (node == low and not inclusive) or (leaf == "final_sparsity" and node >= 1):
                bound = f">= {low}" if inclusive else f"> {low}"
                errors.append(f"{prefix[:-1]}={node}: {what} must be {bound}" + (" and < 1" if leaf == "final_sparsity" else ""))

    walk(cfg, "")
    return errors


def compose_known(config_name: str, overrides: list[str]) -> DictConfig:
    """The config with every override Hydra accepts (group choices first, then keys one by one; the keys it
    refuses are left out, for `check_keys` to explain)."""
    from hydra import compose, initialize_config_dir

    groups = [o for o in overrides if "." not in o.split("=", 1)[0]]
    known = list(groups)
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name, overrides=known)
        for o in overrides:
            if o in groups:
                continue
            try:
                cfg = compose(config_name, overrides=known + [o])
                known.append(o)
            except Exception:
                pass
    return cfg


def problems(config_name: str, argv: list[str]) -> list[str]:
    """What is wrong with these command-line overrides, before Hydra: empty when nothing is found."""
    multirun = "-m" in argv or "--multirun" in argv
    args = [a for a in argv if _split(a)]
    pairs = [(k, _first(v) if multirun else v) for k, v in (_split(a) for a in args)]
    groups = _groups()
    errors = check_groups(pairs, groups) + check_environment(pairs)
    if errors:
        return errors
    overrides = [f"{a[: len(a) - len(a.lstrip('+~'))]}{k}={v}" for a, (k, v) in zip(args, pairs) if not k.startswith("hydra")]
    try:
        cfg = compose_known(config_name, overrides)
    except Exception:
        return []  # Hydra's own message is the one to show
    errors = check_keys(cfg, [(k, v) for a, (k, v) in zip(args, pairs) if not a.startswith("+")], groups)
    if multirun:  # every value of a sweep, not only the first one composed above
        for key, value in (_split(a) for a in args):
            for v in value.split(",")[1:] if _first(value) != value else []:
                errors += check_values(OmegaConf.create({"x": _number(v)}), key)
    return errors


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def preflight(config_name: str) -> Callable:
    """Check the command line of an entry point before Hydra composes it: exit 1 with the problems."""

    def wrap(main: Callable) -> Callable:
        @functools.wraps(main)
        def run(*args: Any, **kwargs: Any) -> Any:
            argv = sys.argv[1:]
            if not args and not kwargs and not os.environ.get("PRUNEGEN_NO_PREFLIGHT") and not any(
                a in ("--help", "-h", "--hydra-help", "--info", "-i", "--cfg", "-c", "--shell-completion") for a in argv
            ):
                found = problems(config_name, argv)
                if found:
                    print("\n".join(f"prunegen: {p}" for p in found), file=sys.stderr)
                    raise SystemExit(1)
            return main(*args, **kwargs)

        return run

    return wrap
