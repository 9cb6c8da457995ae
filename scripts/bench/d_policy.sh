#!/usr/bin/env bash
# What should the discriminator do while a pruned generator is fine-tuned? Same dense checkpoint, 75% of
# the channels removed, 15 epochs: pure distillation (no D), 10*L1 + GAN loss with D training, frozen D,
# D reset to its state at the pruning round, and the GAN loss alone (no distillation).
#   scripts/bench/d_policy.sh DENSE_CKPT [OUT_DIR]
set -euo pipefail
ckpt=${1:?a dense checkpoint}
out=${2:-outputs/bench_d_policy}
common=(experiment=compress_digits init_ckpt=$ckpt pruning.start_epoch=0 pruning.end_epoch=0 pruning.final_sparsity=0.75
        trainer.max_epochs=16 trainer.enable_progress_bar=false)
train=.venv/bin/prunegen-train
$train "${common[@]}" distill=output hydra.run.dir=$out/none
$train -m "${common[@]}" distill=adversarial distill.d_policy=train,freeze,reset hydra.sweep.dir=$out/adversarial
$train "${common[@]}" distill=none hydra.run.dir=$out/gan_loss_only
.venv/bin/prunegen-table $out
