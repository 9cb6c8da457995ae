"""prunegen-train: compose the config, train (and prune) one generator, score it, write metrics.json."""

from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from prunegen import CONFIG_DIR
from prunegen.checkpoint import load_weights
from prunegen.export import export_generator
from prunegen.models.ema import deploy_weights
from prunegen.models.profile import count_macs
from prunegen.models.sampler import GeneratorSampler
from prunegen.pruning.compact import compact, generator_paths
from prunegen.pruning.masks import count_parameters, unmasked_copy
from prunegen.reporting.record import hydra_overrides, recorded_run


def generator_record(model: L.LightningModule, pruning: Any) -> dict[str, Any]:
    """Size and cost of the deployed generator; `*_effective` after removing masked channel groups."""
    total, nonzero = count_parameters(model.generator)
    macs = count_macs(model.generator, model.latent_dim, model.num_classes)
    small = model.generator
    if getattr(pruning, "granularity", None) == "structured":
        small = compact(model.generator, generator_paths(pruning.ignore))
    return {
        "params_total": total,
        "params_nonzero": nonzero,
        "sparsity": 1 - nonzero / total,
        "macs": macs,
        "macs_effective": count_macs(small, model.latent_dim, model.num_classes),
        "params_effective": count_parameters(small)[1],
    }


def pruning_record(pruning: Any, model: L.LightningModule) -> dict[str, Any]:
    if pruning is None:
        return {"method": None, "criterion": None, "target_sparsity": None}
    return {
        "method": pruning.method,
        "criterion": pruning.criterion,
        "target_sparsity": pruning.schedule.final,
        "scope": pruning.scope,
        "achieved_sparsity": pruning.sparsity(model),
        "layers": pruning.report(model),
    }


def build_callbacks(cfg: DictConfig) -> tuple[list[L.Callback], dict[str, Any]]:
    """Distillation first (its teacher is the model before a round), pruning (masks change before
    anything samples), evaluation, then the rest."""
    named = {key: instantiate(cfg[key]) if cfg.get(key) else None for key in ("distill", "pruning", "metrics")}
    others = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    return [c for c in named.values() if c is not None] + others, named


def compress_record(cfg: DictConfig, model: L.LightningModule, named: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """The dense teacher scored with the same budget, and the compact generator exported and timed."""
    out: dict[str, Any] = {}
    distill, evaluation = named["distill"], named["metrics"]
    teacher = getattr(distill, "teacher", None)
    if teacher is not None and evaluation is not None and evaluation.scorer is not None:
        out["dense_metrics"] = evaluation.scorer.score(GeneratorSampler(teacher), evaluation.num_samples, evaluation.batch_size, seed=evaluation.seed)
    if cfg.get("export"):
        deploy_weights(model)  # export what was scored: the EMA's weights when the GAN keeps one
        dense = teacher if teacher is not None else unmasked_copy(model.generator)
        ignore = generator_paths(getattr(named["pruning"], "ignore", []))
        out["export"] = export_generator(model.generator, dense, out_dir, cfg.export, ignore)
    return out


def recover_from_workers(trainer: L.Trainer, model: L.LightningModule, datamodule: Any, named: dict[str, Any], out_dir: Path) -> None:
    """ddp_spawn trains in worker processes: the masks come back only through `last.ckpt` (Lightning
    reloads the weights non-strictly) and the callbacks' results not at all. Reload and score here."""
    last = out_dir / "checkpoints" / "last.ckpt"
    if getattr(trainer.strategy, "_start_method", None) != "spawn" or not last.is_file():
        return
    load_weights(model, last)
    if named["pruning"] is not None:
        named["pruning"].setup(trainer, model, "fit")  # its channel groups were found in the workers
    evaluation = named["metrics"]
    if evaluation is not None:
        evaluation.scorer = evaluation.scorer or evaluation.build(datamodule, model.device)
        evaluation.results = evaluation.scorer.score(model, evaluation.num_samples, evaluation.batch_size, seed=evaluation.seed)


def train(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train one run; returns (the metrics.json record, the objects built)."""
    out_dir = Path(cfg.paths.output_dir)
    record: dict[str, Any] = {"status": "failed", "run": {"seed": cfg.seed, "overrides": hydra_overrides()}}
    # under `ddp` every rank runs this function; rank 0 writes
    with recorded_run(out_dir / "metrics.json", record, cfg, write=rank_zero_only.rank == 0):
        if cfg.get("num_threads"):
            torch.set_num_threads(cfg.num_threads)
        L.seed_everything(cfg.seed, workers=True)
        datamodule = instantiate(cfg.data)
        model = instantiate(cfg.model)
        if cfg.get("init_ckpt"):  # start from trained weights; unlike ckpt_path, training starts at epoch 0
            load_weights(model, cfg.init_ckpt)
        callbacks, named = build_callbacks(cfg)
        pruning, evaluation = named["pruning"], named["metrics"]
        loggers = [instantiate(lg) for lg in (cfg.get("logger") or {}).values() if lg]
        trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        recover_from_workers(trainer, model, datamodule, named, out_dir)
        samples = out_dir / "samples.png"  # written by SampleGridCallback (in the workers under ddp_spawn)
        record.update(
            status="completed",
            data={"name": datamodule.name, "image_size": datamodule.image_size},
            model={"name": model.name, "family": model.family},
            generator=generator_record(model, pruning),
            metrics=dict(evaluation.results) if evaluation is not None else {},
            pruning=pruning_record(pruning, model),
            samples=str(samples) if samples.exists() else None,
            checkpoint=str(out_dir / "checkpoints" / "last.ckpt"),
        )
        record.update(compress_record(cfg, model, named, out_dir))
        return record, {"model": model, "datamodule": datamodule, "trainer": trainer, **named}


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    record, _ = train(cfg)
    m = record.get("metrics", {})
    print(f"[prunegen] {cfg.paths.output_dir}: FID {m.get('fid')}, class coverage {m.get('class_coverage')}")
    if "export" in record:
        from prunegen.reporting.table import print_compress_table

        print_compress_table(record)
    return m.get("fid")


if __name__ == "__main__":
    main()
