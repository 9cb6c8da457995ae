"""What follows `fit` in a run: the deployed generator's size and cost, and, in a compress run, the dense
teacher scored with the same budget, the generator compacted once, exported and timed, and drawn beside
the dense one from the same latents.

The pruning callback says what compaction means for its masks (channel groups removed, or nothing), the
distillation callback holds the dense teacher, the evaluation callback scores; this module only asks them.
"""

from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from torch import nn

from prunegen.fileio import write_json
from prunegen.generator import count_macs
from prunegen.masks import count_parameters, unmasked_copy


def compacted(model: Any, pruning: Any) -> nn.Module:
    """The generator with its removable units removed, as the pruning callback defines them (itself when
    nothing is removable: no pruning, or unstructured masks)."""
    if pruning is None or not hasattr(pruning, "compact"):
        return model.generator
    return pruning.compact(model.generator)


def generator_record(generator: nn.Module) -> dict[str, Any]:
    """Size and cost of the deployed generator (dense shapes; `compact_record` adds its compact form's)."""
    total, nonzero = count_parameters(generator)
    return {"params_total": total, "params_nonzero": nonzero, "sparsity": 1 - nonzero / total, "macs": count_macs(generator)}


def compact_record(small: nn.Module) -> dict[str, Any]:
    """MACs and nonzero parameters after removing the masked channel groups (`small`: the compact generator)."""
    return {"macs_effective": count_macs(small), "params_effective": count_parameters(small)[1]}


def compress(cfg: DictConfig, model: Any, datamodule: Any, named: dict[str, Any], out_dir: Path,
             fid: float | None) -> dict[str, Any]:
    """The record's `generator` part, and with `export` set: `dense_metrics`, `export`, `dense_vs_compact`."""
    from prunegen.deploy.export import export_generator
    from prunegen.run.samples import dense_vs_compact_grid, describe

    distill, evaluation = named.get("distill"), named.get("metrics")
    out: dict[str, Any] = {"generator": generator_record(model.generator)}
    teacher = getattr(distill, "teacher", None)
    if teacher is not None and evaluation is not None:
        out["dense_metrics"] = evaluation.score(teacher, datamodule)  # the same budget, latents and real images
    if cfg.get("export"):
        model.use_ema_weights()  # export what was scored: the EMA's weights when the GAN keeps one
    small = compacted(model, named.get("pruning"))  # once: the record and the export share it
    out["generator"].update(compact_record(small))
    if cfg.get("export"):
        dense = teacher if teacher is not None else unmasked_copy(model.generator)
        out["export"] = export_generator(model.generator, dense, out_dir, cfg.export, small)
        if "int8" in out["export"] and evaluation is not None:
            out["export"]["int8"].update(int8_scores(evaluation, datamodule, out["export"]["int8"]["path"], small, fid))
        write_json(out_dir / "export.json", out["export"])
        out["dense_vs_compact"] = str(dense_vs_compact_grid(dense, model.generator, out_dir / "dense_vs_compact.png", (
            describe("dense", out["export"]["dense"]["macs"], out.get("dense_metrics", {}).get("fid")),
            describe("compact", out["export"]["compact"]["macs"], fid))))
    return out


def int8_scores(evaluation: Any, datamodule: Any, path: str, small: nn.Module, fid: float | None) -> dict[str, Any]:
    """The int8 file's scores by the run's own scorer, on the latents the fp32 compact generator was scored on
    (generation through its ONNX Runtime session), and its FID over the fp32 one's."""
    from prunegen.deploy.quantize import OrtGenerator

    metrics = evaluation.score(OrtGenerator(path, small, threads=1), datamodule)
    ratio = metrics["fid"] / fid if fid and metrics.get("fid") is not None else None
    return {"metrics": metrics, "fid_over_fp32": ratio}
