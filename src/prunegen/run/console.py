"""A console that shows what a user should act on: targeted filters for known library noise, and the
`--help` pages' lists of config options. Imports nothing heavy (no torch, no Lightning)."""

import logging
import warnings
from pathlib import Path

from omegaconf import OmegaConf

# (message regex, category): each one seen in our runs, none something a user can or should act on
NOISY_WARNINGS: list[tuple[str, type[Warning]]] = [
    # Lightning's fit loop: the frozen distillation teacher and the EMA generator are in eval mode on purpose
    (r"Found \d+ module\(s\) in eval mode at the start of training", Warning),
    # torch's pytree deprecation, raised inside Lightning (not our code), once per process
    (r".*isinstance\(treespec, LeafSpec\)", FutureWarning),
    # the GAN's D step leaves G's parameters unused and vice versa, by design; printed once per rank
    (r".*find_unused_parameters=True was specified in DDP constructor", UserWarning),
]
NOISY_LOGS = ("litlogger",)  # Lightning's "💡 Tip: ... try installing [litlogger]" advertisement
LIGHTNING_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


class _DropMessages(logging.Filter):
    def __init__(self, needles: tuple[str, ...]) -> None:
        super().__init__()
        self.needles = needles

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(n in message for n in self.needles)


def quiet() -> None:
    """Silence the known library noise (idempotent; call before the Trainer is built). Warnings from
    third-party deprecations are hidden; our own code's are not (they are filtered by module)."""
    for message, category in NOISY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    for module in ("lightning", "torch", "torchmetrics", "torch_fidelity", "torch_pruning", "hydra", "wandb"):
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=module)
        warnings.filterwarnings("ignore", category=FutureWarning, module=module)
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMessages) for f in logger.filters):
            logger.addFilter(_DropMessages(NOISY_LOGS))


def config_options(group: str) -> str:
    """'dcgan, sngan, vae' : the option files of a config group, for the --help pages."""
    from prunegen import CONFIG_DIR

    folder = Path(CONFIG_DIR) / group
    return ", ".join(sorted(p.stem for p in folder.glob("*.yaml"))) if folder.is_dir() else "(none)"


def export_dir(ckpt_path: str) -> str:
    """prunegen-export's default folder: `<run>/export/` for `<run>/checkpoints/x.ckpt`, else `export/` beside it."""
    ckpt = Path(str(ckpt_path))
    run = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    return str(run / "export")


def register_resolvers() -> None:
    """`${prunegen_options:GROUP}` in the hydra/help templates lists a group's options as they are on disk;
    `${export_dir:CKPT}` is configs/export.yaml's default run folder."""
    if not OmegaConf.has_resolver("prunegen_options"):
        OmegaConf.register_new_resolver("prunegen_options", config_options)
    if not OmegaConf.has_resolver("export_dir"):
        OmegaConf.register_new_resolver("export_dir", export_dir)
    if not OmegaConf.has_resolver("run_folder"):
        from prunegen.run.identity import run_folder, sweep_folder, sweep_point

        OmegaConf.register_new_resolver("run_folder", run_folder)
        OmegaConf.register_new_resolver("sweep_folder", sweep_folder)
        OmegaConf.register_new_resolver("sweep_point", sweep_point)


def capture_console() -> None:
    """Lightning's messages (the pruning rounds' tables among them) and warnings go through the root
    logger, so Hydra's handlers put them in the run folder's train.log as well as on the console."""
    if not logging.getLogger().handlers:  # not under Hydra (a test, a notebook): leave Lightning's as they are
        return
    logging.captureWarnings(True)
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        lightning_log = logging.getLogger(name)
        lightning_log.propagate = True
        for handler in list(lightning_log.handlers):  # Hydra's console handler prints them once
            lightning_log.removeHandler(handler)
