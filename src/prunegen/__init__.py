"""prunegen: train, prune and score image generators."""

from pathlib import Path

# The Hydra config tree at the repository root (the package is installed editable, see the Makefile).
CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "configs")
