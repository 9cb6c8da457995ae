#!/usr/bin/env bash
# FID of pruning methods on the digits DCGAN, each pruned one-shot from the same dense checkpoint and
# fine-tuned the same number of epochs with the plain GAN loss (no distillation), one table at the end.
#   scripts/bench/pruning_fid.sh DENSE_RUN_DIR [OUT_DIR] [EPOCHS]
set -euo pipefail
dense=${1:?a dense run folder, e.g. outputs/make_run/dense}
out=${2:-outputs/bench_pruning_fid}
epochs=${3:-10}
ckpt=$dense/checkpoints/last.ckpt
common=(init_ckpt=$ckpt pruning.start_epoch=0 pruning.end_epoch=0 trainer.max_epochs=$epochs
        metrics.every_n_epochs=1000 trainer.enable_progress_bar=false callbacks.sample_grid.every_n_epochs=1000)
train=.venv/bin/prunegen-train
$train "${common[@]}" pruning=unstructured pruning.final_sparsity=0.8 hydra.run.dir=$out/unstructured_magnitude_80
$train "${common[@]}" pruning=lightning_modelpruning pruning.final_sparsity=0.8 hydra.run.dir=$out/lightning_modelpruning_80
$train -m "${common[@]}" pruning=structured pruning.final_sparsity=0.5 \
    pruning.criterion=magnitude,taylor,gradient,bn_scale,random hydra.sweep.dir=$out/structured_50
mkdir -p $out/dense && cp $dense/metrics.json $out/dense/
.venv/bin/prunegen-table $out
