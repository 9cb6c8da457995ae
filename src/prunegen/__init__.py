"""prunegen: train, prune and score image generators."""

from pathlib import Path

# The Hydra config tree ships inside the package (`configs/` at the repository root links to it), so a
# non-editable `pip install .` finds it too.
CONFIG_DIR = str(Path(__file__).resolve().parent / "configs")

from prunegen.run.console import register_resolvers as _register_resolvers  # noqa: E402  (the --help pages' option lists)

_register_resolvers()
