"""Int8 vs fp32 under ONNX Runtime for the `make run` generators (their trained compact files), per
calibration method: size, output change, time at 1 thread and at every core in each form, op coverage.
The FIDs of the int8 files are in each run's export.json (`int8.metrics`, `make run` scores them).

    .venv/bin/python scripts/bench/int8.py [RUN_DIR=outputs/make_run] [repeats=20]
"""

import json
import sys
import tempfile
from pathlib import Path

import torch
from omegaconf import OmegaConf

from prunegen.deploy.compact import load_compact
from prunegen.deploy.quantize import int8_record


def main(root: str = "outputs/make_run", repeats: int = 20) -> None:
    torch.set_num_threads(1)
    files = sorted(Path(root).rglob("generator_compact.pt"))
    if not files:
        raise SystemExit(f"no generator_compact.pt under {root}: run `make run` first")
    print("| generator | calibration | form | fp32 KB | int8 KB | fp32/int8 size | mean abs diff | "
          "best fp32 ms (1 thr) | int8 ms (1 thr) | x | best fp32 ms (all) | int8 ms (all) | x | int8 layers |")
    print("|" + "---|" * 14)
    results = []
    for path in files:
        generator = load_compact(path)
        for method in ("minmax", "entropy", "percentile"):
            settings = OmegaConf.create({"batch_size": 256, "repeats": repeats, "quantize": "int8", "int8_tolerance": 0.1,
                                         "int8_form": "auto", "calibration": {"method": method, "samples": 512}})
            with tempfile.TemporaryDirectory() as tmp:
                r = int8_record(generator, Path(tmp), settings)
            name = path.parent.relative_to(root).as_posix()
            cov = r["coverage"]
            print(f"| {name} | {method} | {r['form']} | {r['fp32_file_bytes'] / 1024:.0f} | {r['file_bytes'] / 1024:.0f} | "
                  f"{r['size_ratio']:.2f}x | {r['mean_abs_diff']:.4f} | {r['fp32_best_ms_1_thread']:.1f} | "
                  f"{r['latency_ms_1_thread']:.1f} | {r['speedup_vs_best_fp32_1_thread']:.2f} | {r['fp32_best_ms_all_threads']:.1f} | "
                  f"{r['latency_ms_all_threads']:.1f} | {r['speedup_vs_best_fp32_all_threads']:.2f} | "
                  f"{cov['int8']}/{cov['int8'] + cov['float']} |", flush=True)
            results.append({"generator": name, "method": method, **{k: v for k, v in r.items() if k != "coverage"}})
    print(json.dumps({"isa": results[0]["isa"], "threads_all": results[0]["threads_all"]}))


if __name__ == "__main__":
    main(*(sys.argv[1:2] or ["outputs/make_run"]), *[int(a) for a in sys.argv[2:3]])
