# Plait: the two commands that matter are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test
# Two workers by default (this machine has two cores); override with `make test WORKERS=4`.
WORKERS ?= auto

.PHONY: run test lint typecheck unit clean bench

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(STAMP_RUN): pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e .
	touch $@

$(STAMP_TEST): pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e '.[test]'
	touch $(STAMP_RUN) $@

run: $(STAMP_RUN)
	$(VENV)/bin/plait serve

lint: $(STAMP_TEST)
	$(VENV)/bin/ruff check .

typecheck: $(STAMP_TEST)
	$(VENV)/bin/mypy

unit: $(STAMP_TEST)
	$(VENV)/bin/pytest -n $(WORKERS) $(PYTEST_ARGS)

test: lint typecheck unit

bench: $(STAMP_RUN)
	$(VENV)/bin/plait bench all

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
