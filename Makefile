# Two commands on a fresh machine: `make repro` (the pipeline) and `make test` (the tests).
# Each builds .venv from the pinned requirements first, offline-safe (package registries only).
SHELL := bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# DVC stages call `python -m pipeline ...`: that python must be the venv's.
export PATH := $(BIN):$(PATH)
UI_PORT ?= 5000

.PHONY: install repro test ui clean-store team-server team-server-stop bench

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt package.json package-lock.json
	$(PYTHON) -m venv $(VENV)
	@# This machine's pip lists a few local package folders it cannot find; hide those lines.
	$(BIN)/pip install --quiet -r requirements-dev.txt 2>&1 | { grep -v '^WARNING: Location' || true; }
	@# vega, vega-lite and vega-embed from the npm registry, inlined into the offline page
	@# template of `dvc plots show` (DVC's own loads them from a CDN).
	npm ci --silent --no-audit --no-fund
	$(BIN)/python -m pipeline plots-template
	touch $@

repro: install
	dvc repro

test: install
	pytest

# The MLflow UI on the default store, for this machine only.
ui: install
	mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --host 127.0.0.1 --port $(UI_PORT)

# Ours against the seed notebook's way (benchmarks/README.md); wants a quiet machine.
bench: install
	python -m benchmarks.run

# A team's tracking server: PostgreSQL plus `mlflow server` on 127.0.0.1 (README: team server).
# Needs MLFLOW_DB_PASSWORD in the environment; it is never printed.
team-server: install
	bash team/server.sh start

team-server-stop:
	bash team/server.sh stop

# Forget every MLflow run of the default store (DVC outputs stay; `make repro` re-publishes nothing
# until a stage changes: run `python -m pipeline publish` to log them again).
clean-store:
	rm -rf mlflow.db mlartifacts
