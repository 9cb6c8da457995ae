#!/usr/bin/env bash
# The FID-vs-MACs frontier on digits, sharing one dense model per seed (the experiment=frontier_digits
# sweep retrains the dense model in every run; this script trains it once per seed):
#   dense DCGAN (experiment=dense_digits, 100 epochs) per seed (a completed one is reused),
#   then per seed: channel sparsity {0.25 .. 0.875} x criterion, one-shot from the dense checkpoint,
#   EPOCHS (15) of fine-tuning by distillation (every criterion) or by the GAN loss (the first criterion),
#   plus Lightning's ModelPruning at 80%.
#   scripts/frontier_digits.sh [OUT_DIR] [SEEDS] [CRITERIA] [EPOCHS]   e.g. outputs/frontier_digits 0,1,2 magnitude,bn_scale 15
set -euo pipefail
out=${1:-outputs/frontier_digits}
seeds=${2:-0,1,2}
criteria=${3:-magnitude}
sparsities=0.25,0.5,0.625,0.75,0.875
epochs=${4:-15}   # of fine-tuning (compress_digits' default is 40)
train=.venv/bin/prunegen-train
quiet=(trainer.enable_progress_bar=false)
# a completed dense run is left as it is, an unfinished one resumes (one folder per seed: a run folder is a run)
$train -m experiment=dense_digits seed=$seeds "${quiet[@]}" hydra.sweep.dir=$out/dense hydra.sweep.subdir=seed\${seed}
for seed in ${seeds//,/ }; do
  ckpt=$out/dense/seed$seed/checkpoints/last.ckpt
  from=(init_ckpt=$ckpt pruning.start_epoch=0 pruning.end_epoch=0 trainer.max_epochs=$((epochs + 1)) seed=$seed "${quiet[@]}")
  $train -m experiment=compress_digits "${from[@]}" distill=output pruning.criterion=$criteria \
      pruning.final_sparsity=$sparsities hydra.sweep.dir=$out/compact_seed$seed
  # the Torch-Pruning one-shot + plain (GAN-loss) fine-tune baseline, with the first criterion
  $train -m experiment=compress_digits "${from[@]}" distill=none pruning.criterion=${criteria%%,*} \
      pruning.final_sparsity=$sparsities hydra.sweep.dir=$out/finetune_seed$seed
  $train experiment=dense_digits pruning=lightning_modelpruning pruning.final_sparsity=0.8 "${from[@]}" \
      hydra.run.dir=$out/lightning_modelpruning_seed$seed
done
.venv/bin/prunegen-table $out
