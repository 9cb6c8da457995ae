#!/usr/bin/env bash
# Where does the frontier end? At 87.5% channels removed (~45x fewer MACs) distillation for 15 epochs
# is not enough; try longer fine-tunes (40, 80 epochs), feature matching, another criterion, iterative
# pruning (AGP), the point between (81.25%, ~23x) and 93.75% (~136x).
#   scripts/bench/frontier_end.sh DENSE_CKPT [OUT_DIR] [MODEL]
# MODEL: the model config DENSE_CKPT was trained with (sngan_ema, today's dense_digits; the table in
# docs/results.md was measured with dcgan_ema, the recipe before issue 21).
set -euo pipefail
ckpt=${1:?a dense checkpoint}
out=${2:-outputs/bench_frontier_end}
model=${3:-sngan_ema}
base=(experiment=compress_digits model=$model init_ckpt=$ckpt pruning.start_epoch=0 pruning.end_epoch=0 trainer.enable_progress_bar=false)
train=.venv/bin/prunegen-train
$train "${base[@]}" pruning.final_sparsity=0.8125 trainer.max_epochs=16 hydra.run.dir=$out/s0.8125_e15
$train "${base[@]}" pruning.final_sparsity=0.8125 trainer.max_epochs=41 hydra.run.dir=$out/s0.8125_e40
$train "${base[@]}" pruning.final_sparsity=0.875 trainer.max_epochs=16 hydra.run.dir=$out/s0.875_e15
$train "${base[@]}" pruning.final_sparsity=0.875 trainer.max_epochs=41 hydra.run.dir=$out/s0.875_e40
$train "${base[@]}" pruning.final_sparsity=0.875 trainer.max_epochs=81 hydra.run.dir=$out/s0.875_e80
$train "${base[@]}" pruning.final_sparsity=0.9375 trainer.max_epochs=81 hydra.run.dir=$out/s0.9375_e80
$train "${base[@]}" pruning.final_sparsity=0.875 trainer.max_epochs=16 distill=features hydra.run.dir=$out/s0.875_features
$train "${base[@]}" pruning.final_sparsity=0.875 trainer.max_epochs=16 pruning.criterion=bn_scale hydra.run.dir=$out/s0.875_bn_scale
$train "${base[@]}" pruning.final_sparsity=0.875 trainer.max_epochs=41 pruning.end_epoch=12 pruning.every_n_epochs=3 \
    pruning.ramp=cubic hydra.run.dir=$out/s0.875_agp_e40
$train "${base[@]}" pruning.final_sparsity=0.9375 trainer.max_epochs=41 pruning.end_epoch=12 pruning.every_n_epochs=3 \
    pruning.ramp=cubic hydra.run.dir=$out/s0.9375_agp_e40
.venv/bin/prunegen-table $out
