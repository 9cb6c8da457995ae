"""prunegen-export (its entry point: prunegen/export.py): compact a masked checkpoint's generator, verify it, time it, write export.json."""

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from prunegen.choices import check_choice
from prunegen.deploy.compact import file_bytes, save_compact
from prunegen.deploy.inference import latency_ms, prepare_inference
from prunegen.deploy.onnx import onnx_record
from prunegen.generator import count_macs, count_step_macs, is_iterative, max_abs_diff
from prunegen.masks import count_parameters, unmasked_copy
from prunegen.pruning.compact import compact, generator_paths
from prunegen.run.checkpoint import load_model
from prunegen.run.checks import INT8_UNET, check_export
from prunegen.run.lifecycle import RunFolder, attempt
from prunegen.run.record import hydra_overrides

FORMATS = ("pt", "onnx")  # onnx: the .onnx file beside the .pt one




def check_format(settings: DictConfig) -> None:
    check_choice("export.format", settings.get("format", "pt"), FORMATS)


def _ignored(run_cfg: DictConfig) -> list[str]:
    return generator_paths((run_cfg.get("pruning") or {}).get("ignore") or [])


def measure(generator: torch.nn.Module) -> dict[str, Any]:
    """Params, MACs per image and file size; an iterative generator's MACs per step and its step count too."""
    record = {"params": count_parameters(generator)[0], "macs": count_macs(generator), "file_bytes": file_bytes(generator)}
    if is_iterative(generator):
        record["macs_per_step"], record["sampler_steps"] = count_step_macs(generator), generator.sampler_steps
    return record


def export_generator(masked: torch.nn.Module, dense: torch.nn.Module, out_dir: str | Path, settings: DictConfig,
                     small: torch.nn.Module) -> dict[str, Any]:
    """Verify the compact generator `small` against the masked one (refuse above tolerance), time it beside
    `dense`, write the compact file into `out_dir`; returns the record of export.json (the caller writes it)."""
    check_format(settings)
    check_export(settings)
    if is_iterative(small) and settings.get("quantize", "none") != "none":
        raise ValueError(INT8_UNET)  # a checkpoint's generator (prunegen-export): the config may not have said
    masked.eval()
    small.eval()
    diff = max_abs_diff(masked, small)
    if diff > settings.tolerance:
        raise RuntimeError(f"compact generator differs from the masked one by {diff:.3g} > tolerance {settings.tolerance}; nothing written")
    record = {"dense": measure(dense.eval()), "compact": measure(small), "max_abs_diff": diff}
    fast = [prepare_inference(g, settings.fuse_batchnorm, settings.channels_last) for g in (dense, small)]
    latencies = latency_ms(*fast, batch=settings.batch_size, repeats=settings.repeats)
    record["dense"]["latency_ms"], record["compact"]["latency_ms"] = latencies
    if is_iterative(small):  # a batch is batch_size images of sampler_steps steps each
        for key in ("dense", "compact"):
            record[key]["latency_ms_per_image"] = record[key]["latency_ms"] / settings.batch_size
    record["macs_ratio"] = record["dense"]["macs"] / record["compact"]["macs"]
    record["speedup"] = record["dense"]["latency_ms"] / record["compact"]["latency_ms"]
    record["speedup_per_macs_ratio"] = record["speedup"] / record["macs_ratio"]
    record["settings"] = {k: settings[k] for k in ("batch_size", "repeats", "fuse_batchnorm", "channels_last")}
    record["settings"]["threads"] = torch.get_num_threads()
    record["settings"]["format"] = settings.get("format", "pt")
    record["settings"]["quantize"] = settings.get("quantize", "none")
    if settings.get("quantize", "none") == "int8":  # verified before it is written; a refusal leaves nothing
        from prunegen.deploy.quantize import int8_record

        record["int8"] = int8_record(small, out_dir, settings)
    if settings.get("format", "pt") == "onnx":  # before anything is written: a refused ONNX file leaves nothing behind
        onnx_path = (Path(out_dir) / settings.output_name).with_suffix(".onnx")
        record["onnx"] = onnx_record(small, dense, onnx_path, settings.tolerance, settings.batch_size, settings.repeats)
    record["best_runtime"] = best_runtime(record)
    record["compact"]["path"] = str(save_compact(small, Path(out_dir) / settings.output_name))
    return record


def best_runtime(record: dict[str, Any]) -> dict[str, Any]:
    """The runtime that ran the compact generator fastest at one thread (PyTorch eager, or ONNX Runtime when it
    was exported), with its speedup over the dense generator in the same runtime and its speedup / MACs ratio."""
    times = {"pytorch": (record["dense"]["latency_ms"], record["compact"]["latency_ms"])}
    if "onnx" in record:
        o = record["onnx"]
        times["onnxruntime"] = (o["dense"]["latency_ms_1_thread"], o["compact"]["latency_ms_1_thread"])
    name = min(times, key=lambda k: times[k][1])
    dense, compact_ms = times[name]
    return {"name": name, "compact_latency_ms": compact_ms, "speedup": dense / compact_ms,
            "speedup_per_macs_ratio": dense / compact_ms / record["macs_ratio"]}


def export(cfg: DictConfig) -> dict[str, Any]:
    """prunegen-export on one checkpoint: dense = the masks made permanent, compact = channels removed. The
    attempt (completed, failed with its error, interrupted by a signal) is recorded in export.json."""
    check_format(cfg)  # before the checkpoint is read or anything is written
    check_export(cfg)
    folder = RunFolder(cfg.paths.output_dir, cfg, record_name="export.json")
    record: dict[str, Any] = {"status": "failed", "run": {"overrides": hydra_overrides()}, "checkpoint": str(cfg.ckpt_path)}
    with attempt(folder, record):
        if cfg.get("num_threads"):
            torch.set_num_threads(cfg.num_threads)
        model, run_cfg = load_model(cfg.ckpt_path)
        model.use_ema_weights()  # the EMA's weights when the GAN keeps one: what its scores were measured on
        masked = model.generator.eval()
        small = compact(masked, _ignored(run_cfg))
        record.update(export_generator(masked, unmasked_copy(masked), cfg.paths.output_dir, cfg, small))
    return record


def summary(r: dict[str, Any]) -> list[str]:
    """What prunegen-export prints (and logs to <out>/export.log)."""
    lines = [
        f"[prunegen] MACs {r['dense']['macs']:,} -> {r['compact']['macs']:,} ({r['macs_ratio']:.2f}x), "
        f"latency {r['dense']['latency_ms']:.1f} -> {r['compact']['latency_ms']:.1f} ms ({r['speedup']:.2f}x), "
        f"max |diff| {r['max_abs_diff']:.2e}; wrote {r['compact']['path']}"
    ]
    if r["dense"]["macs"] == r["compact"]["macs"]:
        lines.append("[prunegen] nothing was removed: the checkpoint has no structured (channel) masks, so the compact "
                     "generator is the dense one (an unpruned or unstructured-pruned run; pruning=structured removes channels)")
    if "int8" in r:
        q = r["int8"]
        lines.append(
            f"[prunegen] int8 ({q['form']} form): {q['latency_ms_1_thread']:.1f} ms at 1 thread vs best fp32 "
            f"{q['fp32_best_ms_1_thread']:.1f} ms ({q['speedup_vs_best_fp32_1_thread']:.2f}x), "
            f"{q['file_bytes'] / 1024:.0f} KB ({q['size_ratio']:.2f}x smaller than its fp32 ONNX), "
            f"{q['coverage']['int8']} of {q['coverage']['int8'] + q['coverage']['float']} layers int8, "
            f"mean |int8 - fp32| {q['mean_abs_diff']:.2e}; wrote {q['path']}"
        )
    if "onnx" in r:
        o = r["onnx"]
        lines.append(
            f"[prunegen] ONNX Runtime, 1 thread: {o['dense']['latency_ms_1_thread']:.1f} -> "
            f"{o['compact']['latency_ms_1_thread']:.1f} ms ({o['speedup_1_thread']:.2f}x), {o['threads_all']} threads: "
            f"{o['dense']['latency_ms_all_threads']:.1f} -> {o['compact']['latency_ms_all_threads']:.1f} ms "
            f"({o['speedup_all_threads']:.2f}x), max |onnx - torch| {o['max_abs_diff']:.2e}; wrote {o['path']}"
        )
    return lines

