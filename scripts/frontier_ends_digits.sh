#!/usr/bin/env bash
# The two ends of the compression frontier against today's dense teacher (issue 21): per seed the dense
# generator (experiment=dense_digits), then from its checkpoint 75% of the channels (13.6x fewer MACs) and
# 87.5% (45x) removed in one shot with 40 epochs of distillation (experiment=compress_digits), and 87.5% by
# AGP over epochs 0-12 of the same 40 (experiment=compress_digits_agp); then the same three with 80 epochs
# (folders *_e80_*). JOBS runs at a time, one thread each
# (latencies are therefore timed beside another run); a completed run folder is left as it is.
#   scripts/frontier_ends_digits.sh [OUT_DIR] [SEEDS] [JOBS] [DENSE_OVERRIDES]   e.g. outputs/frontier_ends_digits 0,1,2 2
# DENSE_OVERRIDES change the dense training only, e.g. "model.optimizer_g.lr=0.0005 model.optimizer_d.lr=0.0005"
# (the teacher of before lr 1e-3; the compact runs distil at distill.g_lr whatever the model's lr).
set -euo pipefail
out=${1:-outputs/frontier_ends_digits}
seeds=${2:-0,1,2}
jobs=${3:-2}
dense_overrides=${4:-}
export OMP_NUM_THREADS=1
train=".venv/bin/prunegen-train trainer.enable_progress_bar=false"
parallel() {  # one command per stdin line, JOBS at a time; each run's console goes to its folder's train.log
  xargs -P "$jobs" -I{} sh -c '{} >/dev/null 2>&1 || echo "FAILED: {}"'
}
for s in ${seeds//,/ }; do
  echo "$train experiment=dense_digits seed=$s $dense_overrides hydra.run.dir=$out/dense/seed$s"
done | parallel
for epochs in 40 80; do
  tag=$([ $epochs = 40 ] || echo _e$epochs)
  for s in ${seeds//,/ }; do
    from="seed=$s init_ckpt=$out/dense/seed$s/checkpoints/last.ckpt trainer.max_epochs=$((epochs + 1)) export.batch_size=256"
    for sparsity in 0.75 0.875; do
      echo "$train experiment=compress_digits $from pruning.start_epoch=0 pruning.end_epoch=0 pruning.final_sparsity=$sparsity hydra.run.dir=$out/oneshot_${sparsity}${tag}_seed$s"
    done
    echo "$train experiment=compress_digits_agp $from pruning.start_epoch=0 pruning.end_epoch=12 hydra.run.dir=$out/agp_0.875${tag}_seed$s"
  done
done | parallel
.venv/bin/prunegen-table "$out"
