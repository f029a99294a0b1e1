# Two commands on a fresh machine: `make run` (default experiment) and `make test` (the test suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run test test-full lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch pinned in the same command: the CPU wheel, not a CUDA build
	$(BIN)/python -m pip install -q torch==2.13.0 -e ".[dev]"
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/recux

# `make test` (what CI runs) leaves out the tests marked slow (today: DDP on two processes, ~2 min);
# `make test-full` runs every test. Tests that need the network or a GPU skip themselves, saying why.
test: install
	$(BIN)/python -m pytest -m "not slow"

test-full: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check benchmark plugins tests scripts hydra_plugins

bench: install
	$(BIN)/python scripts/bench_metrics.py
	$(BIN)/python scripts/bench_training.py

clean:
	rm -rf $(VENV) outputs multirun
