# The README commands: `make run`, `make test` and `make lint`. Each sets up what is missing first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_DIR := outputs/make_run

.PHONY: run test lint tables install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	$(BIN)/python -c "import prunegen"
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -c "import pytest"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# The compression pipeline on the embedded digits: a dense DCGAN, then two compact generators with 50%
# and 75% of their channels removed (~3.8x and ~13.6x fewer MACs), fine-tuned for 40 epochs by
# distillation from it, exported, quantized to int8 (scored and timed too: the +int8 rows); one table at the end. The dense run comes first (it also
# computes the cached real statistics and domain classifier the others read); the two compact points
# then run side by side, one process and one thread each (hydra/launcher=parallel). int8 is calibrated with
# percentile ranges: minmax left the dense generator at mean |int8 - fp32| 0.032, over export.int8_tolerance 0.03.
INT8 = export.calibration.method=percentile

run: install
	rm -rf $(RUN_DIR)
	$(BIN)/prunegen-train experiment=dense_digits export.quantize=int8 $(INT8) \
		trainer.enable_progress_bar=false hydra.run.dir=$(RUN_DIR)/dense
	$(BIN)/prunegen-train -m hydra/launcher=parallel experiment=compress_digits pruning.final_sparsity=0.5,0.75 \
		init_ckpt=$(RUN_DIR)/dense/checkpoints/last.ckpt \
		pruning.start_epoch=0 pruning.end_epoch=0 trainer.max_epochs=41 export.quantize=int8 $(INT8) trainer.enable_progress_bar=false \
		hydra.sweep.dir=$(RUN_DIR)/compact
	$(BIN)/prunegen-table $(RUN_DIR)

# Two pytest-xdist workers (each with its own cached classifier and real statistics); the slow end-to-end
# tests (marked `slow`) run too: `pytest -m "not slow"` skips them when iterating.
test: install-dev
	$(BIN)/python -m pytest -q -n 2 --durations=10

# ruff (settings in pyproject.toml): run by .ci/run before the tests.
lint: install-dev
	$(BIN)/ruff check src tests scripts

# Rerun the sweep behind every results table (docs/results/NAME.json) and rewrite the table between its
# <!-- table:NAME --> markers in docs/results.md (and in README.md, which shows make_run's). TABLES=NAME
# picks one; ARGS=--check only reports the cells that moved beyond the seed spread (exit 1); ARGS=--render
# rewrites from the committed data, no run.
TABLES ?= --all
tables: install
	$(BIN)/python -m prunegen.reporting.reproduce $(TABLES) $(ARGS)

clean:
	rm -rf $(VENV) outputs .cache .pytest_cache
