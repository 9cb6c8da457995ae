"""prunegen-train: compose the config, train (and prune) one generator, score it, write metrics.json.

The run folder is the run (`prunegen.run.lifecycle`): the same command there resumes it, another
configuration there is refused, a completed run is left alone. torch and Lightning are imported only
once the configuration has passed its checks, so a typo is reported in about a second.
"""

import logging
from typing import Any

import hydra
from omegaconf import DictConfig

from prunegen import CONFIG_DIR
from prunegen.data.checks import check_image_folder
from prunegen.fileio import CACHE_SETTING, check_writable
from prunegen.run.checks import check_export, check_groups, check_init_ckpt, hydra_choices
from prunegen.run.console import quiet
from prunegen.run.identity import resume_command, update_latest
from prunegen.run.lifecycle import RunFolder, RunInterrupted, attempt, global_rank
from prunegen.run.overrides import preflight

log = logging.getLogger("prunegen")


def build_callbacks(cfg: DictConfig) -> tuple[list[Any], dict[str, Any]]:
    """The callbacks of the config's groups (pruning before evaluation: a round at the last epoch is what gets
    scored), then those under `callbacks:`."""
    from hydra.utils import instantiate

    from prunegen.run.checkpoint import ConfigInCheckpoint

    named = {key: instantiate(cfg[key]) if cfg.get(key) else None for key in ("distill", "pruning", "metrics")}
    others = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    others.append(ConfigInCheckpoint(cfg))  # checkpoints carry the config that rebuilds their model
    return [c for c in named.values() if c is not None] + others, named


def cluster_plugins() -> list[Any]:
    """Under SLURM, submitit alone requeues (on USR2): Lightning's own requeuer (USR1) is switched off."""
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    return [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else []


def fit(cfg: DictConfig, folder: RunFolder, record: dict[str, Any]) -> dict[str, Any]:
    """Build everything from the config, train, and fill `record`; returns the objects built."""
    import lightning as L
    import torch
    from hydra.utils import instantiate

    from prunegen.compress import compress
    from prunegen.run.checkpoint import AtomicCheckpointIO, load_weights, restore_from_workers
    from prunegen.run.console import capture_console

    capture_console()
    quiet()  # known library noise off; every warning left is one to act on
    if cfg.get("num_threads"):
        torch.set_num_threads(cfg.num_threads)
    L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    if cfg.get("init_ckpt"):  # start from trained weights; unlike a resume, training starts at epoch 0
        load_weights(model, cfg.init_ckpt, config=cfg)
    callbacks, named = build_callbacks(cfg)
    loggers = [instantiate(lg) for lg in (cfg.get("logger") or {}).values() if lg]
    plugins = [*cluster_plugins(), AtomicCheckpointIO()]
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=plugins)
    record["resumed_from"] = folder.resume_from(cfg.get("ckpt_path"))
    trainer.fit(model, datamodule=datamodule, ckpt_path=record["resumed_from"])
    restore_from_workers(trainer, model, folder.last_ckpt)
    record.update(
        data={"name": datamodule.name, "image_size": datamodule.image_size},
        model={"name": model.name, "family": model.family},
        samples=None,
        checkpoint=str(folder.last_ckpt),
    )
    for callback in trainer.callbacks:  # each callback contributes its own part of the record
        if callable(getattr(type(callback), "record", None)):
            record.update(callback.record(trainer, model))
    record.setdefault("metrics", {})
    record.setdefault("pruning", {"method": None, "criterion": None, "target_sparsity": None})
    record.update(compress(cfg, model, datamodule, named, folder.path, record["metrics"].get("fid")))
    return {"model": model, "datamodule": datamodule, "trainer": trainer, **named}


def train(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train one run (or resume it); returns (the metrics.json record, the objects built)."""
    choices, overrides = hydra_choices()
    check_groups(cfg, choices, overrides)
    check_init_ckpt(cfg)
    check_export(cfg.get("export"), cfg.get("model"))
    check_image_folder(cfg.get("data"))  # empty class folders, classes too small for the held-out split
    if cfg.get("metrics") and cfg.metrics.get("cache_dir"):
        check_writable(cfg.metrics.cache_dir, CACHE_SETTING)  # the classifier and real statistics go there
    folder = RunFolder(cfg.paths.output_dir, cfg, str(cfg.get("resume") or "auto"))
    if folder.resume == "never" and global_rank() == 0 and (moved := folder.move_aside()) is not None:
        log.info(f"resume=never: the earlier files of {folder.path} were moved to {moved}; starting over")
    folder.check_identity()
    if global_rank() == 0:
        update_latest(folder.path)  # <runs>/latest -> this run, for identity-named folders
    if folder.completed and not cfg.get("ckpt_path"):
        log.info(f"{folder.path} holds a completed run of this configuration: nothing to do ({folder.record_file})")
        return folder.previous, {}
    write = global_rank() == 0  # under `ddp` every rank runs this function; rank 0 writes
    if write:
        folder.save_identity(overrides)
    record: dict[str, Any] = {"status": "failed", "run": {"seed": cfg.seed, "overrides": overrides}}
    with attempt(folder, record, write=write):
        objects = fit(cfg, folder, record)
    return record, objects


@preflight("train")
@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    try:
        record, _ = train(cfg)
    except RunInterrupted as err:  # recorded as interrupted; a non-zero exit tells the scheduler
        log.warning(f"{cfg.paths.output_dir}: interrupted ({err}). Resume it with the same command: {resume_command()}")
        raise SystemExit(128 + err.signum) from err
    m = record.get("metrics", {})
    log.info(f"{cfg.paths.output_dir}: FID {m.get('fid')}, class coverage {m.get('class_coverage')}")
    if "export" in record:
        from prunegen.reporting.table import print_compress_table

        print_compress_table(record)
    return m.get(cfg.get("optimized_metric") or "fid")


if __name__ == "__main__":
    main()
