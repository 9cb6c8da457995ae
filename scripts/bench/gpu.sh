#!/usr/bin/env bash
# GPU throughput in under 5 minutes on one GPU (scripts/bench/gpu.py): training img/s (digits DCGAN, CIFAR-10
# SNGAN configuration), compact-generator inference img/s (eager / torch.compile), Inception FID img/s vs
# torch-fidelity. Output: stdout and $OUT_DIR/gpu_bench.txt.
#   scripts/bench/gpu.sh                        # on the GPU
#   scripts/bench/gpu.sh device=cpu tiny=1      # the same code path on the CPU, tiny sizes (the test does this)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
DEVICE=cuda TINY=0 OUT_DIR=${OUT_DIR:-/tmp/prunegen-gpu-bench}
for arg in "$@"; do
  case $arg in
    device=*) DEVICE=${arg#device=} ;;
    tiny=*) TINY=${arg#tiny=} ;;
    *) echo "unknown argument $arg (device=cuda|cpu tiny=0|1)" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT_DIR"
if [ "$TINY" = 1 ]; then
  SIZES=(--epochs 2 --limit-batches 2 --infer-batch 8 --repeats 2 --fid-images 16 --fid-batch 16 --compile-backend eager
         model.generator.ngf=8 model.discriminator.ndf=8 data.batch_size=8)
else
  SIZES=(--epochs 3 --infer-batch 1024 --repeats 20 --fid-images 2000 --fid-batch 200)
fi
timeout 290 "$PY" scripts/bench/gpu.py --device "$DEVICE" "${SIZES[@]}" 2>&1 \
  | grep -v -i -E "warning|warn\(|^\s*$" | tee "$OUT_DIR/gpu_bench.txt"
