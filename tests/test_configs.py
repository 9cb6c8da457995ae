"""The config tree stays flat: what an experiment trains is read in the experiment file and the group files
it names, one level deep, and no group takes its timing from another group."""

import inspect
import re
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir

from prunegen import CONFIG_DIR

CONFIGS = Path(CONFIG_DIR)
EXPERIMENTS = sorted(p for p in (CONFIGS / "experiment").rglob("*.yaml") if not p.name.endswith(".reference.yaml"))
GROUPS = sorted(p.name for p in CONFIGS.iterdir() if p.is_dir() and p.name not in ("experiment", "hydra"))
# Groups another group may read by interpolation: shapes (data.channels, data.image_size, ...) and folders.
READABLE = ("data", "paths")
OVERRIDE = re.compile(r"override /(?P<group>[\w/]+)")


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def _name(path: Path) -> str:
    return path.relative_to(CONFIGS / "experiment").with_suffix("").as_posix()


def test_the_tree_has_experiments():
    assert {"compress_digits", "dense_digits", "han_digits", "paper/gan_lth_digits"} <= {_name(p) for p in EXPERIMENTS}


@pytest.mark.parametrize("path", EXPERIMENTS, ids=_name)
def test_experiment_defaults_are_override_lines_only(path):
    """`override /group: option` lines (and `_self_`): no experiment includes another, so a recipe is one file."""
    for entry in _load(path).get("defaults", []):
        if entry == "_self_":
            continue
        assert isinstance(entry, dict) and len(entry) == 1, f"{_name(path)}: {entry!r} is not `override /group: option`"
        (key, option), = entry.items()
        match = OVERRIDE.fullmatch(key)
        assert match, f"{_name(path)}: {key!r} is not `override /group` (an experiment includes no other config)"
        group = match["group"]
        assert group.split("/")[0] != "experiment", f"{_name(path)} includes another experiment ({option})"
        assert (CONFIGS / group / f"{option}.yaml").is_file(), f"{_name(path)}: no configs/{group}/{option}.yaml"


@pytest.mark.parametrize("path", EXPERIMENTS, ids=_name)
def test_every_experiment_composes(path):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={_name(path)}"])
    assert cfg.model._target_ and cfg.trainer.max_epochs > 0
    if cfg.get("distill"):
        assert cfg.distill.snapshot_epoch is None  # the distillation callback reads the pruning schedule


def _interpolated_groups(value):
    """The top-level keys that the interpolations in a config value read (`${a.b}`, `${oc.select:a.b,default}`)."""
    if isinstance(value, dict):
        return {g for v in value.values() for g in _interpolated_groups(v)}
    if isinstance(value, list):
        return {g for v in value for g in _interpolated_groups(v)}
    if not isinstance(value, str):
        return set()
    found = set()
    for body in re.findall(r"\$\{([^${}]*)", value):
        body = body.removeprefix("oc.select:")
        if ":" in body:  # another resolver (oc.env:, hydra:, now:): no config key
            continue
        key = body.split(",")[0].strip()
        if key and not key.startswith("."):  # relative (${..x}): inside the file's own node
            found.add(key.split(".")[0])
    return found


@pytest.mark.parametrize("group", GROUPS)
def test_groups_read_no_other_groups_settings(group):
    """A group's file reads another group only for shapes and folders (data, paths), never for its timing:
    e.g. distillation finds the first pruning round on the trainer's callbacks, not in `pruning.start_epoch`."""
    for path in sorted((CONFIGS / group).rglob("*.yaml")):
        assert "${oc.select:pruning." not in path.read_text() or group == "pruning", path
        others = _interpolated_groups(_load(path)) & set(GROUPS) - {group, *READABLE}
        assert not others, f"{path.relative_to(CONFIGS)} interpolates keys of the group(s) {sorted(others)}"


def test_no_distill_config_reads_the_pruning_group():
    for path in sorted((CONFIGS / "distill").glob("*.yaml")):
        text = path.read_text()
        assert "${oc.select:pruning." not in text and "${pruning." not in text, path


def test_structured_pruning_stands_alone():
    """structured.yaml includes no other file and sets only what its callback reads as structured: the
    threshold-only keys it no longer carries take the callback's defaults, which are the values it had."""
    from prunegen.pruning import PruningCallback

    structured, unstructured = (_load(CONFIGS / "pruning" / f"{name}.yaml") for name in ("structured", "unstructured"))
    assert "defaults" not in structured
    assert structured["granularity"] == "structured" and structured["_target_"] == unstructured["_target_"]
    params = inspect.signature(PruningCallback).parameters
    assert set(structured) - {"_target_"} <= set(params)
    dropped = set(unstructured) - set(structured)
    assert dropped == {"amount", "alpha", "reference", "max_sparsity"}
    assert {k: params[k].default for k in dropped} == {k: unstructured[k] for k in dropped}
