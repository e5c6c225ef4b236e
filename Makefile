# Two commands from a fresh clone: `make run` (set up, run the demo) and `make test` (set up, run every test).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)

export HUB_HOME ?= $(CURDIR)/var

.PHONY: setup run run-distributed demo-sync test bench clean lock

$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@test -x $(VENV)/bin/uv || $(PY) -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(VENV)/bin/uv pip install --python $(PY) --compile-bytecode -q -r requirements.lock
	$(VENV)/bin/uv pip install --python $(PY) --compile-bytecode -q --no-deps -e .
	@rm -f $(VENV)/.installed-*; touch $@

setup: $(STAMP)
	$(VENV)/bin/hub init

## set up everything and run the demo: agencies, Airflow standalone, the API, one verified household
run: setup
	$(VENV)/bin/hub demo

## the same demo on the distributed set-up: CeleryExecutor (two workers), Redis, PostgreSQL (see README.md)
run-distributed: setup
	$(VENV)/bin/hub demo --distributed

## the whole demo inline, without Airflow or servers left behind
demo-sync: setup
	$(VENV)/bin/hub demo --sync

## set up and run every test
test: $(STAMP)
	$(VENV)/bin/pytest

## run the benchmarks: prints a table, writes bench/results.json (BENCH_ARGS=--quick for a short run)
bench: setup
	$(VENV)/bin/hub bench $(BENCH_ARGS)

## regenerate requirements.lock from requirements.in (name==version lines only)
lock:
	$(VENV)/bin/uv pip compile --python-version 3.11 --no-header --no-annotate requirements.in -o requirements.lock

clean:
	rm -rf var .pytest_cache
