"""ONNX Runtime vs PyTorch latency, batch 256: the dense `make run` DCGAN vs its 50% / 75% channel-pruned
compact versions (make run's widths, untrained weights: the latency depends on the widths only).

    .venv/bin/python scripts/bench/onnx_latency.py [repeats]
"""

import json
import os
import sys
import tempfile
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from prunegen import CONFIG_DIR
from prunegen.deploy.inference import latency_ms, prepare_inference
from prunegen.deploy.onnx import export_onnx, onnx_max_abs_diff, ort_latency_ms
from prunegen.generator import count_macs


def generators() -> dict[str, torch.nn.Module]:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["experiment=compress_digits"])
    dense = instantiate(cfg.model.generator).eval()
    spec = dense.spec()
    out = {"dense": dense}
    for sparsity in (0.5, 0.75):  # per-layer channel pruning keeps round(w * (1 - s)) of every hidden layer
        widths = [max(1, round(w * (1 - sparsity))) for w in spec["widths"]]
        out[f"{sparsity:.0%}"] = type(dense)(**{**spec, "widths": widths}).eval()
    return out


def main(repeats: int = 30) -> None:
    torch.set_num_threads(1)
    gens = generators()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        paths = [export_onnx(g, Path(tmp) / f"{i}.onnx") for i, g in enumerate(gens.values())]
        diffs = [onnx_max_abs_diff(p, g) for p, g in zip(paths, gens.values())]
        eager = latency_ms(*[prepare_inference(g) for g in gens.values()], batch=256, repeats=repeats)
        one = ort_latency_ms(*paths, batch=256, repeats=repeats, threads=1)
        every = ort_latency_ms(*paths, batch=256, repeats=repeats, threads=cores)
    rows = {name: {"macs": count_macs(g), "onnx_max_abs_diff": d, "torch_ms_1_thread": e, "ort_ms_1_thread": o,
                   f"ort_ms_{cores}_threads": a}
            for (name, g), d, e, o, a in zip(gens.items(), diffs, eager, one, every)}
    print(json.dumps(rows, indent=1))
    dense = rows["dense"]
    for name, row in rows.items():
        ratios = {k: f"{dense[k] / row[k]:.2f}x" for k in row if k != "onnx_max_abs_diff"}
        print(f"{name:>6}: dense / this  {ratios}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
