"""prunegen-train: compose the config, train (and prune) one generator, score it, write metrics.json.

The run folder is the run (`prunegen.lifecycle`): the same command there resumes it, another
configuration there is refused, a completed run is left alone. torch and Lightning are imported only
once the configuration has passed its checks, so a typo is reported in about a second.
"""

import logging
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from prunegen import CONFIG_DIR
from prunegen.checks import check_groups, check_init_ckpt, hydra_choices
from prunegen.console import quiet
from prunegen.lifecycle import RunFolder, RunInterrupted, attempt, global_rank

log = logging.getLogger("prunegen")


def generator_record(model: Any, structured: bool, ignore: list[str]) -> dict[str, Any]:
    """Size and cost of the deployed generator; `*_effective` after removing masked channel groups."""
    from prunegen.models.profile import count_macs
    from prunegen.pruning.compact import compact, generator_paths
    from prunegen.pruning.masks import count_parameters

    total, nonzero = count_parameters(model.generator)
    small = compact(model.generator, generator_paths(ignore)) if structured else model.generator
    return {
        "params_total": total,
        "params_nonzero": nonzero,
        "sparsity": 1 - nonzero / total,
        "macs": count_macs(model.generator),
        "macs_effective": count_macs(small),
        "params_effective": count_parameters(small)[1],
    }


def build_callbacks(cfg: DictConfig) -> tuple[list[Any], dict[str, Any]]:
    """The callbacks of the config's groups (pruning before evaluation: a round at the last epoch is what gets
    scored), then those under `callbacks:`."""
    from hydra.utils import instantiate

    from prunegen.checkpoint import ConfigInCheckpoint

    named = {key: instantiate(cfg[key]) if cfg.get(key) else None for key in ("distill", "pruning", "metrics")}
    others = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    others.append(ConfigInCheckpoint(cfg))  # checkpoints carry the config that rebuilds their model
    return [c for c in named.values() if c is not None] + others, named


def compress_record(cfg: DictConfig, model: Any, datamodule: Any, named: dict[str, Any], out_dir: Path,
                    pruning: dict[str, Any], fid: float | None) -> dict[str, Any]:
    """The dense teacher scored with the same budget, the compact generator exported and timed, and both
    drawn side by side from the same latents (labelled with MACs and FID)."""
    from prunegen.export import export_generator
    from prunegen.models.ema import deploy_weights
    from prunegen.pruning.compact import generator_paths
    from prunegen.pruning.masks import unmasked_copy
    from prunegen.reporting.samples import dense_vs_compact_grid, describe

    out: dict[str, Any] = {}
    distill, evaluation = named["distill"], named["metrics"]
    teacher = getattr(distill, "teacher", None)
    if teacher is not None and evaluation is not None:
        out["dense_metrics"] = evaluation.score(teacher, datamodule)  # the same budget, latents and real images
    if cfg.get("export"):
        deploy_weights(model)  # export what was scored: the EMA's weights when the GAN keeps one
        dense = teacher if teacher is not None else unmasked_copy(model.generator)
        ignore = generator_paths(pruning.get("ignore") or [])
        out["export"] = export_generator(model.generator, dense, out_dir, cfg.export, ignore)
        out["dense_vs_compact"] = str(dense_vs_compact_grid(dense, model.generator, out_dir / "dense_vs_compact.png", (
            describe("dense", out["export"]["dense"]["macs"], out.get("dense_metrics", {}).get("fid")),
            describe("compact", out["export"]["compact"]["macs"], fid))))
    return out


def cluster_plugins() -> list[Any]:
    """Under SLURM, submitit alone requeues (on USR2): Lightning's own requeuer (USR1) is switched off."""
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    return [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else []


def restore_from_workers(trainer: Any, model: Any, folder: RunFolder) -> None:
    """ddp_spawn trains in worker processes: the masks and every callback's state (its results included)
    come back through `last.ckpt` (Lightning reloads only the plain weights, non-strictly)."""
    import torch

    from prunegen.checkpoint import load_state

    if getattr(trainer.strategy, "_start_method", None) != "spawn" or not folder.last_ckpt.is_file():
        return
    checkpoint = torch.load(folder.last_ckpt, map_location="cpu", weights_only=False)
    load_state(model, checkpoint["state_dict"])
    states = checkpoint.get("callbacks", {})
    for callback in trainer.callbacks:
        if callback.state_key in states:
            callback.load_state_dict(states[callback.state_key])


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


def fit(cfg: DictConfig, folder: RunFolder, record: dict[str, Any]) -> dict[str, Any]:
    """Build everything from the config, train, and fill `record`; returns the objects built."""
    import lightning as L
    import torch
    from hydra.utils import instantiate

    from prunegen.checkpoint import load_weights

    capture_console()
    quiet()  # known library noise off; every warning left is one to act on
    if cfg.get("num_threads"):
        torch.set_num_threads(cfg.num_threads)
    L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    if cfg.get("init_ckpt"):  # start from trained weights; unlike a resume, training starts at epoch 0
        load_weights(model, cfg.init_ckpt)
    callbacks, named = build_callbacks(cfg)
    loggers = [instantiate(lg) for lg in (cfg.get("logger") or {}).values() if lg]
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=cluster_plugins())
    record["resumed_from"] = folder.resume_from(cfg.get("ckpt_path"))
    trainer.fit(model, datamodule=datamodule, ckpt_path=record["resumed_from"])
    restore_from_workers(trainer, model, folder)
    samples = folder.path / "samples.png"  # written by SampleGridCallback (in the workers under ddp_spawn)
    record.update(
        data={"name": datamodule.name, "image_size": datamodule.image_size},
        model={"name": model.name, "family": model.family},
        samples=str(samples) if samples.exists() else None,
        checkpoint=str(folder.last_ckpt),
    )
    for callback in trainer.callbacks:  # each callback contributes its own part of the record
        if callable(getattr(type(callback), "record", None)):
            record.update(callback.record(trainer, model))
    record.setdefault("metrics", {})
    record.setdefault("pruning", {"method": None, "criterion": None, "target_sparsity": None})
    structured = record["pruning"].get("granularity") == "structured"  # "unstructured_layer" contains "structured"
    record["generator"] = generator_record(model, structured, record["pruning"].get("ignore") or [])
    record.update(compress_record(cfg, model, datamodule, named, folder.path, record["pruning"], record["metrics"].get("fid")))
    return {"model": model, "datamodule": datamodule, "trainer": trainer, **named}


def train(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train one run (or resume it); returns (the metrics.json record, the objects built)."""
    choices, overrides = hydra_choices()
    check_groups(cfg, choices, overrides)
    check_init_ckpt(cfg)
    folder = RunFolder(cfg.paths.output_dir, cfg, str(cfg.get("resume") or "auto"))
    folder.check_identity()
    if folder.completed and not cfg.get("ckpt_path"):
        log.info(f"{folder.path} holds a completed run of this configuration: nothing to do ({folder.metrics_file})")
        return folder.previous, {}
    write = global_rank() == 0  # under `ddp` every rank runs this function; rank 0 writes
    if write:
        folder.save_identity(overrides)
    record: dict[str, Any] = {"status": "failed", "run": {"seed": cfg.seed, "overrides": overrides}}
    with attempt(folder, record, write=write):
        objects = fit(cfg, folder, record)
    return record, objects


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    try:
        record, _ = train(cfg)
    except RunInterrupted as err:  # recorded as interrupted; a non-zero exit tells the scheduler
        raise SystemExit(128 + err.signum) from err
    m = record.get("metrics", {})
    log.info(f"{cfg.paths.output_dir}: FID {m.get('fid')}, class coverage {m.get('class_coverage')}")
    if "export" in record:
        from prunegen.reporting.table import print_compress_table

        print_compress_table(record)
    return m.get(cfg.get("optimized_metric") or "fid")


if __name__ == "__main__":
    main()
