"""`--help` of each entry point says what it does and lists its own config groups, with their options."""

import subprocess
import sys
from pathlib import Path

import pytest

from prunegen import CONFIG_DIR
from prunegen.run.console import config_options

GROUPS = {
    "train": ["experiment", "data", "model", "pruning", "distill", "export", "metrics", "trainer", "logger", "callbacks"],
    "evaluate": ["data", "metrics"],
    "export": ["export"],
}
TRAINING_ONLY = ["pruning", "distill", "trainer", "logger", "experiment"]


def _help(module: str) -> str:
    out = subprocess.run([sys.executable, "-m", f"prunegen.{module}", "--help"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.slow
@pytest.mark.parametrize("module", list(GROUPS))
def test_help_lists_the_entry_points_own_groups(module):
    text = _help(module)
    command = "prunegen-eval" if module == "evaluate" else f"prunegen-{module}"
    assert text.startswith(f"{command}: ") and "== Examples ==" in text
    listed = [line.split()[0] for line in text.split("== Config groups")[1].split("==")[1].splitlines() if line.strip()]
    assert set(GROUPS[module]) <= set(listed)
    if module != "train":
        assert not set(TRAINING_ONLY) & set(listed)  # only what this command composes
    for group in GROUPS[module]:
        if group != "export":  # prunegen-export has a single settings file
            assert config_options(group) in text  # the options on disk, not a stale copy
    assert text.count(f"{command} ") >= 3  # three examples


def test_config_options_are_the_files_of_the_group():
    assert config_options("logger").split(", ") == sorted(p.stem for p in (Path(CONFIG_DIR) / "logger").glob("*.yaml"))
    assert {"csv", "tensorboard", "wandb"} <= set(config_options("logger").split(", "))
    assert config_options("no_such_group") == "(none)"
