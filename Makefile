# PolicyWatch developer commands. `make help` lists them.
# Two commands are all a newcomer needs: `make run` and `make test`. Both create .venv on first use.

SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The first interpreter on PATH that is Python >= 3.11.
PYTHON ?= $(shell for p in python3.11 python3.12 python3.13 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { echo $$p; break; }; done)

.DEFAULT_GOAL := help
.PHONY: help install run test lint typecheck fmt bench migrate seed tune-encoder clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python >= 3.11 is required (none found on PATH)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with its dev tools

run: install ## run the service: migrates and seeds the SQLite database first (console output without a bot token)
	exec $(BIN)/policywatch run

lint: install ## ruff format check and lint
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: install ## mypy (strict)
	$(BIN)/mypy

# pytest-xdist: one worker per core; "worksteal" rebalances as the minute-long tests finish.
# TEST_WORKERS=0 runs the suite in one process. At most TEST_MAX_WORKERS: two workers held up
# to 26 PostgreSQL connections at once (sampled), and PostgreSQL allows 100 by default.
TEST_WORKERS ?= auto
TEST_MAX_WORKERS ?= 4

test: lint typecheck ## the whole suite: ruff, mypy, pytest (PostgreSQL tests run when a server answers; required with CI=true)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --maxprocesses $(TEST_MAX_WORKERS) \
		--dist worksteal --durations=10

fmt: install ## reformat and autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install ## run the benchmarks and print their numbers
	$(BIN)/python -m bench

migrate: install ## upgrade the database to the newest schema
	$(BIN)/policywatch migrate

seed: install ## load config/sources.yaml and config/themes.yaml into the database
	$(BIN)/policywatch seed

TUNING_FOLDS := 3

tune-encoder: ## retrain pipeline/data/encoder_tuning*.json (35-50 min on two idle cores; PyTorch in a venv of its own, .venv-tune)
	test -x .venv-tune/bin/python || $(PYTHON) -m venv .venv-tune
	.venv-tune/bin/python -m pip install --quiet -e . 'torch==2.13.0'
	.venv-tune/bin/python tools/tune_encoder.py
	rm -f pipeline/data/encoder_tuning_fold*.json
	for k in $$(seq 0 $$(($(TUNING_FOLDS) - 1))); do \
	  .venv-tune/bin/python tools/tune_encoder.py --folds $(TUNING_FOLDS) --fold $$k \
	    --out pipeline/data/encoder_tuning_fold$$k.json || exit 1; \
	done

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .venv-tune .mypy_cache .ruff_cache .pytest_cache
