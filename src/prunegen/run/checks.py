"""Checks made on the composed config before anything is imported or built (no torch here)."""

from typing import Any

from omegaconf import DictConfig, OmegaConf

from prunegen.choices import check_choice
from prunegen.run.record import hydra_overrides, parse_overrides

# Config nodes that become one object each (a callback, a logger); `callbacks` and `logger` hold several.
SINGLE = ("distill", "pruning", "metrics")
MANY = ("callbacks", "logger")


def hydra_choices() -> tuple[dict[str, Any], list[str]]:
    """(the group options chosen, the command-line overrides) of the running Hydra app; empty outside one."""
    from hydra.core.hydra_config import HydraConfig


    choices = dict(HydraConfig.get().runtime.choices) if HydraConfig.initialized() else {}
    return choices, hydra_overrides()


def _user_keys(overrides: list[str], group: str) -> list[str]:
    """The command-line overrides that set keys inside `group` (`group.key=...`, `+group.key=...`)."""
    return [k for k in parse_overrides(overrides) if k.startswith(f"{group}.")]


def check_node(group: str, node: Any, choice: str | None, overrides: list[str]) -> None:
    """A node without `_target_` cannot be built: a clear error, or nothing when the group was set to none."""
    if not node or (isinstance(node, DictConfig) and "_target_" in node):  # None or {}: switched off
        return
    keys = sorted(OmegaConf.to_container(node).keys()) if isinstance(node, DictConfig) else [str(node)]
    if choice in ("none", "null") and not _user_keys(overrides, group):
        return  # keys an experiment set in a group the user switched off: the group stays off
    raise ValueError(
        f"{group}: the config sets {keys} but has no _target_, so nothing can be built"
        + (f" ({group}={choice} selects no {group} object)" if choice else "")
        + f". Choose one first ({group}=NAME, the files in configs/{group.split('.')[0]}/), "
        f"or switch it off with {group}=none and no {group}.* overrides."
    )


def disabled(cfg: DictConfig, choices: dict[str, Any]) -> list[str]:
    """Groups the user set to none although an experiment set keys in them: they are dropped."""
    return [g for g in SINGLE if choices.get(g) in ("none", "null") and cfg.get(g) is not None]


def check_groups(cfg: DictConfig, choices: dict[str, Any], overrides: list[str]) -> None:
    """Every object node has a `_target_`; groups switched off stay off (their stray keys are dropped)."""
    for group in SINGLE:
        check_node(group, cfg.get(group), choices.get(group), overrides)
    for parent in MANY:
        node = cfg.get(parent)
        if node is not None and not isinstance(node, DictConfig):
            raise ValueError(f"{parent}: expected a mapping of name -> config with _target_, got {node!r}")
        for name, child in (node or {}).items():
            check_node(f"{parent}.{name}", child, choices.get(parent), overrides)
    for group in disabled(cfg, choices):
        cfg[group] = None


def check_init_ckpt(cfg: DictConfig) -> None:
    """A structurally pruned checkpoint as the starting point needs a structured pruning config: without
    one its channel masks would be trained on, but never counted or removed at export."""
    if not cfg.get("init_ckpt"):
        return
    from prunegen.run.checkpoint import run_config

    source = OmegaConf.select(run_config(cfg.init_ckpt), "pruning.granularity")
    given = OmegaConf.select(cfg, "pruning.granularity")
    if source == "structured" and given != "structured":
        raise ValueError(
            f"init_ckpt={cfg.init_ckpt} was pruned structurally (its run had pruning.granularity=structured), but "
            f"this run has pruning.granularity={given}: use pruning=structured to keep pruning its channel groups, "
            f"or start from the dense checkpoint"
        )


CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
INT8_FORMS = ("auto", "transposed", "subpixel")  # auto: the faster int8 file, measured


INT8_UNET = ("export.quantize: int8 is built for one-pass generators (GANs, VAE decoders), not for a diffusion UNet "
             "yet; export it with export.quantize=none")


def check_export(settings: Any, model: Any = None) -> None:
    """The int8 keys of `export` (no torch: checked before anything is trained or read); with the model's
    config, int8 of a diffusion UNet (not built) is refused before training too."""
    if not settings:
        return
    check_choice("export.quantize", settings.get("quantize", "none"), ("none", "int8"))
    target = str(((model or {}).get("generator") or {}).get("_target_", ""))
    if settings.get("quantize", "none") == "int8" and target.endswith("UNetGenerator"):
        raise ValueError(INT8_UNET)
    cal = settings.get("calibration") or {}
    check_choice("export.calibration.method", cal.get("method", "minmax"), CALIBRATION_METHODS)
    check_choice("export.int8_form", settings.get("int8_form", "auto"), INT8_FORMS)
    if int(cal.get("samples", 512)) < 1:
        raise ValueError(f"export.calibration.samples must be >= 1 (latents to calibrate on), got {cal.get('samples')}")
    if float(settings.get("int8_tolerance", 0.03)) <= 0:
        raise ValueError(f"export.int8_tolerance must be > 0 (the mean |int8 - fp32| allowed), got {settings.get('int8_tolerance')}")
