"""prunegen-eval: score a checkpoint (over several seeds), or a folder of images, and write metrics.json.

torch is imported once the command line has passed its checks: `--help` and a typo answer in about a second."""

from __future__ import annotations

import logging
import statistics
from typing import TYPE_CHECKING, Any

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from prunegen import CONFIG_DIR
from prunegen.fileio import CACHE_SETTING, check_writable
from prunegen.run.lifecycle import RunFolder, RunInterrupted, attempt
from prunegen.run.overrides import preflight
from prunegen.run.record import hydra_overrides

if TYPE_CHECKING:
    from prunegen.metrics import EvaluationCallback, ScorerSpec

NUMERIC = ("fid", "kid_mean", "kid_std", "is_mean", "is_std", "precision", "recall", "class_coverage")


def summarize(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """First seed's record with every numeric score replaced by its mean over seeds, plus mean/std and each seed."""
    out = {k: v for k, v in per_seed[0].items() if k != "seed"}
    over: dict[str, dict[str, float | None]] = {}
    for key in NUMERIC:
        values = [r[key] for r in per_seed if r.get(key) is not None]
        if len(values) == len(per_seed):
            std = statistics.stdev(values) if len(values) > 1 else None
            over[key] = {"mean": statistics.fmean(values), "std": std}
            out[key] = over[key]["mean"]
    out["over_seeds"] = over
    out["per_seed"] = [{"seed": r["seed"], **{k: r.get(k) for k in NUMERIC}} for r in per_seed]
    return out


def score_checkpoint(cfg: DictConfig, spec: ScorerSpec, record: dict[str, Any]) -> dict[str, Any]:
    from prunegen.masks import count_parameters
    from prunegen.run.checkpoint import load_model

    model, run_cfg = load_model(cfg.ckpt_path)
    model = model.to(cfg.device)
    if cfg.get("sampler_steps") is not None:  # fewer sampling steps: a compression axis scored without retraining
        generators = [g for g in (model.generator, getattr(model, "ema", None)) if hasattr(g, "sampler_steps")]
        if not generators:
            raise ValueError(f"sampler_steps={cfg.sampler_steps}: {cfg.ckpt_path} is not a diffusion model (model=ddpm); "
                             "drop sampler_steps")
        for g in generators:
            g.sampler_steps = int(cfg.sampler_steps)
    datamodule = instantiate(cfg.data if cfg.get("data") else run_cfg.data)
    total, nonzero = count_parameters(model.generator)
    record["model"] = {"name": getattr(model, "name", None), "family": getattr(model, "family", None)}
    record["generator"] = {"params_total": total, "params_nonzero": nonzero, "sparsity": 1 - nonzero / total}
    record["data"] = {"name": datamodule.name, "image_size": datamodule.image_size, "split": spec.real_split}
    scorer = spec.build(datamodule, cfg.device)
    per_seed = []
    for seed in cfg.seeds:
        result = scorer.score(model, spec.num_samples, spec.batch_size, seed=int(seed))
        per_seed.append({**result, "seed": int(seed)})
    record["real_stats_cached"] = scorer.real_cached
    return summarize(per_seed)


def score_folder(cfg: DictConfig, spec: ScorerSpec, record: dict[str, Any]) -> dict[str, Any]:
    from prunegen.metrics import from_folder

    datamodule = instantiate(cfg.data) if cfg.get("data") else None
    if datamodule is None and not cfg.get("real_dir"):
        raise ValueError("fake_dir= needs the real images: set real_dir=PATH or data=NAME")
    scorer = spec.build(datamodule, cfg.device, real_dir=cfg.get("real_dir"))
    fakes = from_folder(cfg.fake_dir, scorer.extractor.channels)
    result = scorer.score_images(fakes.batches(spec.batch_size), fakes.count, cfg.device, seed=int(cfg.seeds[0]))
    if datamodule is not None:
        record["data"] = {"name": datamodule.name, "image_size": datamodule.image_size, "split": spec.real_split}
    record["real_stats_cached"] = scorer.real_cached
    return result


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Score `cfg.ckpt_path` or `cfg.fake_dir`; returns the metrics.json record (also written to the run folder)."""
    record: dict[str, Any] = {"status": "failed", "run": {"overrides": hydra_overrides(), "seeds": list(cfg.seeds)}}
    record["source"] = {k: cfg.get(k) for k in ("ckpt_path", "fake_dir", "real_dir")}
    with attempt(RunFolder(cfg.paths.output_dir, cfg), record):  # every attempt recorded, signals included
        if bool(cfg.get("ckpt_path")) == bool(cfg.get("fake_dir")):
            raise ValueError("set exactly one of ckpt_path=PATH (a checkpoint) and fake_dir=PATH (a folder of images)")
        if not cfg.get("metrics"):
            raise ValueError("metrics=null: choose an extractor config, e.g. metrics=classifier or metrics=inception")
        if cfg.metrics.get("cache_dir"):
            check_writable(cfg.metrics.cache_dir, CACHE_SETTING)
        import torch

        if cfg.get("num_threads"):
            torch.set_num_threads(cfg.num_threads)
        evaluation: EvaluationCallback = instantiate(cfg.metrics)  # validates the extractor and its weights
        score = score_checkpoint if cfg.get("ckpt_path") else score_folder
        record["metrics"] = score(cfg, evaluation.spec, record)  # the training run's scorer spec
    return record


@preflight("eval")
@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
def main(cfg: DictConfig) -> float | None:
    try:
        record = evaluate(cfg)
    except RunInterrupted as err:  # recorded as interrupted; a non-zero exit tells the scheduler
        raise SystemExit(128 + err.signum) from err
    m = record["metrics"]
    logging.getLogger("prunegen").info(  # the console and <out>/evaluate.log
        f"[prunegen-eval] {cfg.paths.output_dir}: FID {m['fid']:.4g} ({m['extractor']}), "
        f"precision {m['precision']:.3f}, recall {m['recall']:.3f}")
    return m["fid"]


if __name__ == "__main__":
    main()
