#!/usr/bin/env bash
# GAN-LTH's protocol on digits (experiment=paper/gan_lth_digits): for every seed, iterative magnitude
# pruning (IMP), random pruning to the same sparsities, and random tickets (the IMP run's masks of every
# round on re-initialised weights), JOBS runs at a time (one CPU thread each), then the table.
# The controls train only the last CONTROL_ROUNDS rounds (pruning.start_round): every round starts from
# the same initial weights, so a control round depends only on its mask.
#   scripts/gan_lth_digits.sh [OUT_DIR] [SEEDS] [JOBS] [extra overrides...]
#   e.g. scripts/gan_lth_digits.sh /tmp/gan_lth_digits 0,1,2 6
# ROUNDS, EPOCHS_PER_ROUND must match the experiment's pruning.rounds / epochs_per_round (6, 6).
# Every run folder (OUT_DIR/{imp,random,ticket}_seedN) holds a metrics.json whose pruning.rounds has one
# row per round (sparsity, remaining, fid, fid_best, kid_mean, is_mean, class_coverage).
set -euo pipefail
out=${1:-outputs/gan_lth_digits}
seeds=${2:-0,1,2}
jobs=${3:-2}
shift $(( $# < 3 ? $# : 3 ))
extra=("$@")
train="${PRUNEGEN_TRAIN:-.venv/bin/prunegen-train}"
rounds=${ROUNDS:-6}
epochs=${EPOCHS_PER_ROUND:-6}
control_start=$(( rounds - ${CONTROL_ROUNDS:-3} ))
control=(pruning.start_round=$control_start trainer.max_epochs=$(( (rounds - control_start) * epochs )))
base=(experiment=paper/gan_lth_digits trainer.enable_progress_bar=false "${extra[@]}")
mkdir -p "$out"

run() {  # run NAME SEED [overrides...]: one run in OUT_DIR/NAME_seedSEED, its console in run.log
  local name=$1 seed=$2; shift 2
  local dir=$out/${name}_seed$seed
  mkdir -p "$dir"
  local timer=()  # CPU and wall seconds of the run, beside its metrics.json
  [ -x /usr/bin/time ] && timer=(/usr/bin/time -f '{"user_s": %U, "sys_s": %S, "wall_s": %e}' -o "$dir/time.json")
  "${timer[@]}" "$train" "${base[@]}" seed="$seed" hydra.run.dir="$dir" "$@" >"$dir/run.log" 2>&1 \
    && echo "done $name seed $seed" || echo "FAILED $name seed $seed (see $dir/run.log)"
}

ticket() {  # a random ticket waits for its IMP run's masks of every round
  local seed=$1
  while ! grep -q '"status": "completed"' "$out/imp_seed$seed/metrics.json" 2>/dev/null; do
    grep -q '"status": "failed"' "$out/imp_seed$seed/metrics.json" 2>/dev/null && { echo "FAILED ticket seed $seed: IMP failed"; return; }
    sleep 10
  done
  run ticket "$seed" pruning.ticket_masks="$out/imp_seed$seed/imp_masks.pt" pruning.save_masks=null $control_str
}
export -f run ticket
export out train
export base_str="${base[*]}" control_str="${control[*]}"

# IMP runs first, then random pruning, then the tickets (each after its IMP run): all slots stay busy.
queue=()
for s in ${seeds//,/ }; do queue+=("run imp $s"); done
for s in ${seeds//,/ }; do queue+=("run random $s pruning.criterion=random ${control[*]}"); done
for s in ${seeds//,/ }; do queue+=("ticket $s"); done
start=$(date +%s)
printf '%s\n' "${queue[@]}" | xargs -P "$jobs" -I{} bash -c 'read -ra base <<<"$base_str"; {}'
echo "wall time: $(( $(date +%s) - start )) s for ${#queue[@]} runs, $jobs at a time"
