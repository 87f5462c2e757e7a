# Set-up, demo and tests on a fresh machine: `make demo`, `make test`. Both install what they need first.
# TORCH is the torch requirement installed before the project: the CPU wheel here; on a GPU machine use e.g.
# `make TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128" setup`.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
WORKDIR ?= runs/demo
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Scripts the tests and the demo start (launch/train.sh runs `python`, tests run hadolint) use the venv's tools.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup demo test test-fast lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/sse-dist demo --workdir $(WORKDIR)

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not integration"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
