# radreview: `make demo` to try it, `make test` to prove it. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
TORCH_SPEC ?= torch==2.13.0
PORT ?= 8000
export PYTHONUNBUFFERED := 1

.PHONY: install demo serve test lint typecheck pytest bench backup restore docker-config clean

install: $(VENV)/.installed node_modules/.installed static/dist/manifest.json

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q "$(TORCH_SPEC)"
	$(PIP) install -q -e ".[dev,ml,embedded]"
	touch $@

node_modules/.installed: package-lock.json
	npm ci --no-fund --no-audit
	touch $@

static/dist/manifest.json: node_modules/.installed vite.config.js $(shell find static/src -type f 2>/dev/null)
	npm run build --silent

demo: install
	$(PY) -m reviewapp.runner demo --port $(PORT)

serve: install
	$(PY) -m reviewapp.runner serve --port $(PORT)

lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	DJANGO_DEBUG=1 $(VENV)/bin/mypy reviewapp inference
	DJANGO_DEBUG=1 $(PY) manage.py makemigrations --check --dry-run
	$(PY) -m reviewapp.runner check-deploy

pytest: install
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test: lint pytest

backup: install
	$(PY) -m reviewapp.runner backup $(or $(TO),$(error make backup TO=folder))

restore: install
	$(PY) -m reviewapp.runner restore $(or $(FROM),$(error make restore FROM=folder))

bench: install
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/2} $(PY) bench/run_all.py

docker-config:
	docker compose -f docker/compose.yaml config --quiet

clean:
	rm -rf static/dist var/test .pytest_cache .mypy_cache .ruff_cache
