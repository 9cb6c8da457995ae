#!/usr/bin/env bash
# Rerun the sweep behind a results table and rewrite it (docs/results/NAME.json -> its block in docs/results.md, and README.md for make_run):
#   scripts/reproduce.sh NAME [--check] [--runs DIR] [--render]      (NAME: make_run, frontier_digits, ...)
# --check reruns and lists every cell that moved by more than the seed spread (exit 1 when any did).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m prunegen.reporting.reproduce "$@"
