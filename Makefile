# Set-up, demo and tests on a fresh machine: `make demo`, `make test`. Both install what they need first.
# Set-up installs the locked environment (requirements/*.txt, hashes checked, nothing resolved) with uv, which
# is bootstrapped from pip when absent; plain pip from the same lock is the fallback. LOCK picks the torch
# variant: `cpu` (the default; torch 2.13.0+cpu from the local find-links) or `cuda` (PyPI's CUDA build):
# `make LOCK=cuda setup` on a GPU machine. `make lock` refreshes both lock files from pyproject.toml.
PYTHON ?= python3
VENV ?= .venv
LOCK ?= cpu
WORKDIR ?= runs/demo
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCKFILE := requirements/$(LOCK).txt
# Scripts the tests and the demo start (launch/train.sh runs `python`, tests run hadolint) use the venv's tools.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup demo test test-fast lint format lock clean

$(STAMP): pyproject.toml $(LOCKFILE) launch/setup.sh
	PYTHON=$(PYTHON) bash launch/setup.sh $(VENV) $(LOCKFILE)
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

lock:
	bash launch/setup.sh --lock

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
