# Two commands for a new machine: `make run` and `make test`. Everything else is `make help`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.DEFAULT_GOAL := help
.PHONY: help run test test-sqlite test-postgres lint typecheck bench deploy-check migrate clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/.runtime: requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required (found " + sys.version.split()[0] + ")")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { echo "python3 -m venv failed: on Debian run 'apt-get install python3-venv'"; exit 1; }
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .  # puts .venv/bin/loanctl
	@touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt requirements-nodeps.txt
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	@touch $@

run: $(VENV)/.runtime ## Install, migrate the SQLite default, create admin, serve on HOST:PORT
	$(PY) -m app.cli init-db
	$(PY) -m app.cli bootstrap-admin
	exec $(VENV)/bin/uvicorn app.main:app --host $(HOST) --port $(PORT)

migrate: $(VENV)/.runtime ## Apply migrations to DATABASE_URL
	$(PY) -m app.cli init-db

test: $(VENV)/.dev ## The whole suite: SQLite leg, then PostgreSQL leg
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-postgres

test-sqlite: $(VENV)/.dev
	TEST_DATABASE=sqlite $(PY) -m pytest -n 2 --dist loadfile
	TEST_DATABASE=sqlite $(PY) -m pytest tests/browser

test-postgres: $(VENV)/.dev
	TEST_DATABASE=postgresql $(PY) -m pytest -n 2 --dist loadfile tests/integration tests/api tests/reliability

lint: $(VENV)/.dev ## ruff, mypy --strict and the layering contracts
	$(VENV)/bin/ruff check app tests bench
	$(VENV)/bin/mypy app
	$(VENV)/bin/lint-imports

typecheck: $(VENV)/.dev
	$(VENV)/bin/mypy app

bench: $(VENV)/.dev ## Benchmarks (print numbers, assert nothing)
	$(PY) bench/run_all.py $(BENCH)

deploy-check: $(VENV)/.dev ## Checks of the deployment kit in deploy/
	bash deploy/check.sh

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
