# `make repro` runs the pipeline, `make test` the tests; both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
# SOURCE=<path or URL> runs the pipeline on another MLQA copy (sets data.source via dvc exp run -S)
SOURCE ?=

.PHONY: repro test bench clean-venv

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

repro: $(VENV)/.installed
ifeq ($(SOURCE),)
	dvc repro
else
	dvc exp run -S data.source=$(SOURCE)
endif

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q

clean-venv:
	rm -rf $(VENV)
