# The two README commands: `make run` and `make test`. Each sets up what is missing first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_DIR := outputs/make_run

.PHONY: run test install install-dev clean

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

# Dense vs. unstructured magnitude pruning to 50% and 80% on the embedded digits, then one table.
run: install
	rm -rf $(RUN_DIR)
	$(BIN)/prunegen-train pruning=none hydra.run.dir=$(RUN_DIR)/dense
	$(BIN)/prunegen-train -m pruning=unstructured pruning.final_sparsity=0.5,0.8 \
		hydra.sweep.dir=$(RUN_DIR)/pruned
	$(BIN)/prunegen-table $(RUN_DIR)

test: install-dev
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) outputs .cache .pytest_cache
