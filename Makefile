# Plait: the two commands that matter are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test
# Two workers by default (this machine has two cores); override with `make test WORKERS=4`.
WORKERS ?= auto

.PHONY: run test lint typecheck unit clean bench web web-test chromium

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# `plait serve` runs under `python -OO` (tools/cli.py): its bytecode is compiled
# here once, or every start would compile it from source. Best effort: a
# package's stray unparsable file must not stop the install.
COMPILE_OO := $(PY) -OO -m compileall -q -j 0 $(VENV)/lib homeserver client_api federation tools >/dev/null 2>&1 || true

$(STAMP_RUN): pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e .
	$(COMPILE_OO)
	touch $@

$(STAMP_TEST): pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e '.[test]'
	$(COMPILE_OO)
	touch $(STAMP_RUN) $@

run: $(STAMP_RUN) web
	$(VENV)/bin/plait serve

lint: $(STAMP_TEST)
	$(VENV)/bin/ruff check .

typecheck: $(STAMP_TEST)
	$(VENV)/bin/mypy

unit: $(STAMP_TEST)
	$(VENV)/bin/pytest -n $(WORKERS) $(PYTEST_ARGS)

test: lint typecheck web-test unit

bench: $(STAMP_RUN)
	$(VENV)/bin/plait bench all

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache web/node_modules web/dist tests/web/artifacts

# The reference web client (web/): npm ci from the committed lockfile, then a
# Vite build into web/dist, redone only when its sources change. `make run`
# still starts the server without Node (the server then says the client is
# not built); `make test` needs it.
WEB_SRC := $(shell find web/src web/public -type f 2>/dev/null) web/index.html web/vite.config.ts web/tsconfig.json
WEB_DEPS := web/node_modules/.package-lock.json
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(WEB_DEPS): web/package-lock.json web/package.json
	cd web && npm ci --no-audit --no-fund
	touch $@

web/dist/index.html: $(WEB_DEPS) $(WEB_SRC)
	cd web && npm run build
	touch $@

web:
	@if ! command -v npm >/dev/null 2>&1; then \
		echo "npm not found: skipping the web client build (install Node 20+ to get it)"; \
	elif ! $(MAKE) --no-print-directory web/dist/index.html; then \
		echo "*** the web client did not build; the server starts without it"; fi

# Browser tests drive Debian's chromium (never a downloaded browser build).
chromium:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

web-test: web/dist/index.html chromium
	cd web && npm run typecheck && npm test

# Plait and Synapse side by side (Synapse goes into its own .bench/synapse-venv,
# never into .venv); writes bench/REPORT.md and bench/report.json. Loopback only.
.PHONY: bench-compare
bench-compare: $(STAMP_RUN)
	mkdir -p .bench
	$(PY) -m tools.bench.compare $(BENCH_ARGS)
