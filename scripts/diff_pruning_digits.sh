#!/usr/bin/env bash
# Diff-Pruning's table at CPU scale (issue 19): the dense ddpm_digits DDPM (trained once, seed 0, like the
# paper's one pretrained model; a completed run folder is reused), then one-shot structured pruning of
# SPARSITIES of the channels of every group by CRITERIA, each fine-tuned 16 epochs (1/8 of the dense 130, as
# the paper's 100K of 800K steps) on the denoising loss alone (Diff-Pruning's recipe) and with distillation
# from the dense UNet, for SEEDS; JOBS runs at a time, one CPU thread each. Then the table.
#   scripts/diff_pruning_digits.sh [OUT_DIR] [SEEDS] [JOBS] [CRITERIA] [SPARSITIES] [DISTILL]
#   e.g. scripts/diff_pruning_digits.sh outputs/diff_pruning_digits 0,1,2 2 diff_pruning,taylor,magnitude,random 0.5,0.375 none,denoising
# Run folders: OUT_DIR/dense/seed0, OUT_DIR/dense_finetune_seed<N> and OUT_DIR/<criterion>_<sparsity>_<distill>_seed<N>, each with metrics.json
# (the export's MACs per step, params, latency per image in its export.json).
set -euo pipefail
out=${1:-outputs/diff_pruning_digits}
seeds=${2:-0,1,2}
jobs=${3:-2}
criteria=${4:-diff_pruning,taylor,magnitude,random}
sparsities=${5:-0.5,0.375}
distills=${6:-none,denoising}
train="${PRUNEGEN_TRAIN:-.venv/bin/prunegen-train}"
epochs=16
export OMP_NUM_THREADS=1
mkdir -p "$out"
ckpt=$out/dense/seed0/checkpoints/last.ckpt
[ -f "$ckpt" ] || "$train" experiment=ddpm_digits seed=0 trainer.enable_progress_bar=false hydra.run.dir="$out/dense/seed0"

run() {  # run CRITERION SPARSITY DISTILL SEED: one run folder, its console in run.log
  local dir=$out/$1_$2_$3_seed$4
  mkdir -p "$dir"
  "$train" experiment=compress_ddpm_digits init_ckpt="$ckpt" pruning.start_epoch=0 pruning.end_epoch=0 \
    trainer.max_epochs=$((epochs + 1)) trainer.enable_progress_bar=false pruning.criterion="$1" \
    pruning.final_sparsity="$2" distill="$3" seed="$4" hydra.run.dir="$dir" >"$dir/run.log" 2>&1 \
    && echo "done $dir" || echo "FAILED $dir (see $dir/run.log)"
}
export out train ckpt epochs

control() {  # control SEED: the fair control, the dense UNet trained the same 16 epochs more, unpruned
  local dir=$out/dense_finetune_seed$1
  mkdir -p "$dir"
  "$train" experiment=ddpm_digits init_ckpt="$ckpt" trainer.max_epochs=$((epochs + 1)) trainer.enable_progress_bar=false \
    seed="$1" hydra.run.dir="$dir" >"$dir/run.log" 2>&1 && echo "done $dir" || echo "FAILED $dir (see $dir/run.log)"
}
export -f run control

# seed by seed, so that a partial sweep already holds every cell once; the controls last
queue=()
for s in ${seeds//,/ }; do for sp in ${sparsities//,/ }; do for d in ${distills//,/ }; do for c in ${criteria//,/ }; do
  queue+=("run $c $sp $d $s")
done; done; done; done
for s in ${seeds//,/ }; do queue+=("control $s"); done
start=$(date +%s)
printf '%s\n' "${queue[@]}" | xargs -P "$jobs" -I{} bash -c '{}'
echo "wall time: $(( $(date +%s) - start )) s for ${#queue[@]} runs, $jobs at a time"
.venv/bin/prunegen-table "$out" || true
