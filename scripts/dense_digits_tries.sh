#!/usr/bin/env bash
# The dense digits recipe against the real-vs-real floor (issue 21, item 5): experiment=dense_digits with one
# change at a time from what the field uses, JOBS at a time (one CPU thread each), then each try's FID,
# FID / floor, precision, recall (beside the floor's), effective classes and wall time.
#   scripts/dense_digits_tries.sh [OUT_DIR] [JOBS] [SEED] [TRIES...]   (TRIES: names below; default all)
set -euo pipefail
out=${1:-outputs/dense_digits_tries}
jobs=${2:-2}
seed=${3:-0}
shift $(( $# < 3 ? $# : 3 ))
declare -A tries=(
  [base]=""
  [diffaug_translation]="model.diffaugment=[translation]"
  [diffaug_color_translation_cutout]="model.diffaugment=[color,translation,cutout]"
  [ttur]="model.optimizer_g.lr=0.0001 model.optimizer_d.lr=0.0004"
  [hinge]="model.loss=hinge"
  [ema_0.999]="model.ema_decay=0.999"
  [sn_hinge]="model.loss=hinge model.discriminator.spectral_norm=true model.discriminator.batch_norm=false"
  [lsgan]="model.loss=lsgan"
)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(base diffaug_translation diffaug_color_translation_cutout ttur hinge ema_0.999 sn_hinge lsgan)
train="${PRUNEGEN_TRAIN:-.venv/bin/prunegen-train}"
export OMP_NUM_THREADS=1 out train seed
mkdir -p "$out"
run() {  # run NAME OVERRIDES...: one run folder, its console in run.log, its wall time in time.json
  local name=$1; shift
  local dir=$out/$name
  mkdir -p "$dir"
  local timer=()
  [ -x /usr/bin/time ] && timer=(/usr/bin/time -f '{"wall_s": %e}' -o "$dir/time.json")
  "${timer[@]}" "$train" experiment=dense_digits export=none seed="$seed" trainer.enable_progress_bar=false \
    hydra.run.dir="$dir" "$@" >"$dir/run.log" 2>&1 && echo "done $name" || echo "FAILED $name (see $dir/run.log)"
}
export -f run
for n in "${names[@]}"; do echo "run $n ${tries[$n]}"; done | xargs -P "$jobs" -I{} bash -c '{}'
.venv/bin/python - "$out" "${names[@]}" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
print("| try | FID | FID / floor | precision | recall | classes | wall s |")
print("|---|---|---|---|---|---|---|")
for name in sys.argv[2:]:
    try:
        m = json.loads((out / name / "metrics.json").read_text())["metrics"]
        t = json.loads((out / name / "time.json").read_text())["wall_s"] if (out / name / "time.json").exists() else None
        print(f"| {name} | {m['fid']:.3f} | {m['fid'] / m['fid_floor']:.2f} | {m['precision']:.2f} ({m['precision_floor']:.2f}) "
              f"| {m['recall']:.2f} ({m['recall_floor']:.2f}) | {m['class_coverage']:.2f} ({m['classes_floor']:.2f}) | {t} |")
    except (OSError, KeyError, TypeError, ValueError) as err:
        print(f"| {name} | failed or missing ({err}) | | | | | |")
PY
