# `make repro` runs the pipeline, `make test` the tests; both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
# SOURCE=<path or URL> runs the pipeline on another MLQA copy (sets data.source via dvc exp run -S)
SOURCE ?=
# QUICK=1: a quick look, as an experiment: three of the six languages, 200 of 520 and 16 of 48 articles (of the two
# archives), one generated query per passage and language, a fifth of the training steps (one tune check
# each), 5 shuffled permutations, one draw of the trained models (README)
QUICK ?=
QUICK_PARAMS := -S 'languages=[ar,de,zh]' -S n_languages=3 -S data.max_articles=200 -S xquad.max_articles=16 \
	-S xqg.n_queries=1 \
	-S 'tune.n_queries_used=[1]' -S xqg.warm.max_steps=80 -S xqg.warm.check_every=80 \
	-S translate.warm.max_steps=60 -S translate.warm.check_every=60 -S scaling.permutations=5 \
	-S 'scaling.seeds=[]'

.PHONY: repro test bench clean-venv

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

repro: $(VENV)/.installed
ifeq ($(SOURCE)$(QUICK),)
	dvc repro
else
	dvc exp run $(if $(SOURCE),-S data.source=$(SOURCE)) $(if $(QUICK),$(QUICK_PARAMS))
endif

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q

clean-venv:
	rm -rf $(VENV)
