#!/usr/bin/env bash
# Han et al.'s protocol on digits (experiment=han_digits), sharing one dense model per seed:
#   dense DCGAN (experiment=dense_digits, 100 epochs) per seed (a completed one is reused),
#   then per seed and alpha: |w| < alpha x std(W) per layer at the end of epochs 0, 5, 10, 15 from the dense
#   checkpoint, distillation from it throughout, scored before every next round; then the per-round table
#   and the file sizes / latency of the last round's generator.
#   scripts/han_digits.sh [OUT_DIR] [SEEDS] [ALPHAS]   e.g. outputs/han_digits 0,1,2 0.5,0.75,1.0
set -euo pipefail
out=${1:-outputs/han_digits}
seeds=${2:-0,1,2}
alphas=${3:-0.5,0.75,1.0}
train=.venv/bin/prunegen-train
quiet=(trainer.enable_progress_bar=false)
# a completed dense run is left as it is, an unfinished one resumes (one folder per seed: a run folder is a run)
$train -m experiment=dense_digits seed=$seeds "${quiet[@]}" hydra.sweep.dir=$out/dense hydra.sweep.subdir=seed\${seed}
for seed in ${seeds//,/ }; do
  $train -m experiment=han_digits init_ckpt=$out/dense/seed$seed/checkpoints/last.ckpt pruning.start_epoch=0 \
      pruning.end_epoch=15 trainer.max_epochs=20 seed=$seed pruning.alpha=$alphas "${quiet[@]}" \
      hydra.sweep.dir=$out/han_seed$seed hydra.sweep.subdir=alpha\${pruning.alpha}
done
.venv/bin/python scripts/han_table.py $out/han_seed*/alpha*
