# gridflex — the two Quickstart commands are `make demo` and `make test`; both set up .venv first.
SHELL := /bin/bash
VENV := .venv
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: setup demo test dev lint
setup:            ## create/refresh .venv (uv; CPU torch where a local CPU wheel exists)
	@bash scripts/bootstrap.sh
	@mkdir -p $(DAGSTER_HOME)

demo: setup       ## ingest the demo grid, train small forecasters, plan 24 hours; prints example queries
	@$(VENV)/bin/gridflex demo

# Test files run on TEST_WORKERS processes (pytest-xdist), each file's tests in one process so its
# module fixtures (a trained warehouse, a scenario) are built once: 2 = CI's 2 cores.
TEST_WORKERS ?= 2
test: setup       ## the whole test suite (what CI runs)
	@$(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist loadfile

dev: setup        ## the Dagster UI on http://127.0.0.1:3000 with the same instance the demo used
	@mkdir -p $(DAGSTER_HOME) && cp -n dagster.yaml $(DAGSTER_HOME)/ 2>/dev/null || true
	@$(VENV)/bin/dg dev

lint: setup
	@$(VENV)/bin/ruff check .
