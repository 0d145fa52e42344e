# Two commands do all set-up on a fresh clone: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench venv fhir-venv browser deploy-config constraints clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

fhir-venv:
	scripts/fhir-server-venv.sh

## Headless Chromium for the browser tests (Debian packages; installed where missing).
browser:
	scripts/browser-deps.sh

## Serve on http://127.0.0.1:8080 with the embedded defaults (bundled hooks and rules,
## SQLite under ./var, demo patients, development mode).
run: venv
	mkdir -p var
	SPINEHIP_MODE=$${SPINEHIP_MODE:-development} $(VENV)/bin/spinehip serve --host 127.0.0.1 --port 8080

## Install everything, start the real servers the tests use (PostgreSQL, the local FHIR
## server), run the whole suite.
## PYTEST_WORKERS=0 runs the tests in one process; PYTEST_ARGS picks tests and options.
PYTEST_WORKERS ?= 2
test: venv fhir-venv browser
	$(VENV)/bin/ruff check .
	scripts/pg-test-server.sh run -- $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadscope $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .

## Regenerate deploy/config-maps.yaml after changing hooks/ or rules/ (make test checks it).
deploy-config: venv
	$(PY) scripts/render-config-maps.py

## Re-pin constraints.txt to what the venv has (after changing dependencies in pyproject.toml).
constraints: venv
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	{ sed -n '/^#/p' constraints.txt; $(PY) -m pip freeze --all --exclude-editable | grep -iv "^pip=" | grep -iv '^spinehip-cds'; } > constraints.new
	mv constraints.new constraints.txt

bench: venv fhir-venv
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .fhir-venv var .pytest_cache
