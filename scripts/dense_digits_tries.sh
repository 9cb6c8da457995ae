#!/usr/bin/env bash
# The dense digits recipe against the real-vs-real floor (issue 21, item 5): experiment=dense_digits with one
# change at a time from what the field uses, JOBS at a time (one CPU thread each), then each try's FID,
# FID / floor (at the floor's sample size), precision, recall (beside the floor's), effective classes and wall time.
#   scripts/dense_digits_tries.sh [OUT_DIR] [JOBS] [SEED] [TRIES...]   (TRIES: names below; default all)
set -euo pipefail
out=${1:-outputs/dense_digits_tries}
jobs=${2:-2}
seed=${3:-0}
shift $(( $# < 3 ? $# : 3 ))
before="trainer.max_epochs=100 model=dcgan_ema"            # the recipe before issue 21
then="model.optimizer_g.lr=0.0005 model.optimizer_d.lr=0.0005"  # sngan_ema's lr when the sngan_* tries ran
declare -A tries=(
  # from model=dcgan_ema, 100 epochs (the recipe before issue 21):
  [base]="$before"
  [diffaug_translation]="$before model.diffaugment=[translation]"
  [diffaug_color_translation_cutout]="$before model.diffaugment=[color,translation,cutout]"
  [ttur]="$before model.optimizer_g.lr=0.0001 model.optimizer_d.lr=0.0004"
  [hinge]="$before model.loss=hinge"
  [ema_0.999]="$before model.ema_decay=0.999"
  [sn_hinge]="$before model.loss=hinge model.discriminator.spectral_norm=true model.discriminator.batch_norm=false"
  [lsgan]="$before model.loss=lsgan"
  # from model=sngan_ema as it was then (lr 5e-4; it is 1e-3 and dense_digits trains 200 epochs since these tries):
  [sngan_200_epochs]="trainer.max_epochs=200 $then"
  [sngan_r1_0.1]="trainer.max_epochs=100 model.loss=hinge_r1 +model.gp_weight=0.1 $then"
  [sngan_r1_1]="trainer.max_epochs=100 model.loss=hinge_r1 +model.gp_weight=1.0 $then"
  [sngan_adam_0_0.9]="trainer.max_epochs=100 model.optimizer_g.betas=[0.0,0.9] model.optimizer_d.betas=[0.0,0.9] $then"
  [sngan_lr_2e-4]="trainer.max_epochs=100 model.optimizer_g.lr=0.0002 model.optimizer_d.lr=0.0002"
  [sngan_ngf16_200_epochs]="model.generator.ngf=16 trainer.max_epochs=200 $then"
  [sngan_resnet_20_epochs]="model=sngan_resnet model.ema_decay=0.995 model.generator.ngf=32 model.discriminator.ndf=32 trainer.max_epochs=20"
  [sngan_300_epochs]="trainer.max_epochs=300 $then"
  [sngan_200_epochs_r1_1]="trainer.max_epochs=200 model.loss=hinge_r1 +model.gp_weight=1.0 $then"
  [sngan_200_epochs_ema_0.999]="trainer.max_epochs=200 model.ema_decay=0.999 $then"
  [sngan_200_epochs_lr_1e-3]="trainer.max_epochs=200 model.optimizer_g.lr=0.001 model.optimizer_d.lr=0.001"
)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(base diffaug_translation diffaug_color_translation_cutout ttur hinge ema_0.999 sn_hinge lsgan
  sngan_200_epochs sngan_r1_0.1 sngan_r1_1 sngan_adam_0_0.9 sngan_lr_2e-4 sngan_ngf16_200_epochs sngan_resnet_20_epochs
  sngan_300_epochs sngan_200_epochs_r1_1 sngan_200_epochs_ema_0.999 sngan_200_epochs_lr_1e-3)
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
from prunegen.reporting.runs import load_record  # its FID / floor: at the floor's sample size, where recorded
out = Path(sys.argv[1])
print("| try | FID | FID / floor | precision | recall | classes | wall s |")
print("|---|---|---|---|---|---|---|")
for name in sys.argv[2:]:
    try:
        r = load_record(out / name / "metrics.json")
        t = json.loads((out / name / "time.json").read_text())["wall_s"] if (out / name / "time.json").exists() else None
        print(f"| {name} | {r['metrics.fid']:.3f} | {r['fid_vs_floor']:.2f} | {r['metrics.precision']:.2f} "
              f"({r['metrics.precision_floor']:.2f}) | {r['metrics.recall']:.2f} ({r['metrics.recall_floor']:.2f}) "
              f"| {r['metrics.class_coverage']:.2f} ({r['metrics.classes_floor']:.2f}) | {t} |")
    except (OSError, KeyError, TypeError, ValueError) as err:
        print(f"| {name} | failed or missing ({err}) | | | | | |")
PY
