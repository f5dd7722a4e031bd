# MLOps Portal — the two commands: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
PG_URL ?= postgres://postgres@127.0.0.1:5432/mlops_portal
REDIS_URL ?= redis://127.0.0.1:6379/12
HOST ?= 127.0.0.1
PORT ?= 8000
# the links the portal writes (e-mails, webhooks, audit events) point where make run serves it
PORTAL_BASE_URL ?= http://$(HOST):$(PORT)

MLFLOW_VENV := .venv-mlflow
SCHEMATHESIS_VENV := .venv-schemathesis

.PHONY: dev-venv mlflow-venv schemathesis-venv run test test-postgres test-sqlite bench lint venv static demo services browser-deps clean bench-evidently-venv bench-mlflow-venv bench-wrk bench-nannyml-venv

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (found %s)" % sys.version.split()[0])'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	touch $(STAMP)

# the test tools (pytest, Playwright, ruff, …) only for make test / lint / bench
$(DEV_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(DEV_STAMP)

venv: $(STAMP)

dev-venv: $(DEV_STAMP)

static: venv
	$(BIN)/python manage.py vendor_static

demo: venv static
	$(BIN)/python manage.py migrate --noinput
	PORTAL_BASE_URL=$(PORTAL_BASE_URL) $(BIN)/python manage.py load_demo --sync

run: demo
	@echo ""
	@echo "  MLOps Portal: http://$(HOST):$(PORT)/"
	@echo "  Demo logins (password 'demo-pass-123'): owner, reviewer, reviewer2, auditor, privacy, admin"
	@echo "  API docs: http://$(HOST):$(PORT)/api/docs/"
	@echo ""
	HOST=$(HOST) PORT=$(PORT) PORTAL_BASE_URL=$(PORTAL_BASE_URL) $(BIN)/honcho start -f Procfile

# Another install running (a second checkout's setup, unattended upgrades) holds dpkg's lock:
# wait for it rather than fail.
APT_WAIT := -o DPkg::Lock::Timeout=600

browser-deps:
	@command -v chromium >/dev/null 2>&1 || { echo "Installing Debian's chromium for the browser tests"; \
	  (apt-get $(APT_WAIT) update -qq && DEBIAN_FRONTEND=noninteractive apt-get $(APT_WAIT) install -y -qq chromium) \
	  || { echo "ERROR: chromium is missing and could not be installed (need apt-get as root)"; exit 1; }; }

services: venv
	$(BIN)/python tests/services.py --postgres "$(PG_URL)" --redis "$(REDIS_URL)"

# The whole suite on PostgreSQL (unit tests on both cores; then the integration and browser
# tests, four files at a time: each test process has its own test database and Redis database,
# and starts its own workers, servers and Chromium), then the whole suite
# again on SQLite, the embedded default (all but the few PostgreSQL-only tests). The demo's story
# (marker demo_story) is checked on SQLite here and, on PostgreSQL, by the demo tour on its own
# load of the demo: one load per database.
PYTEST := $(BIN)/python -m pytest -q -p no:cacheprovider
PG_ENV := DATABASE_URL="$(PG_URL)" CELERY_BROKER_URL="$(REDIS_URL)" TEST_REDIS_URL="$(REDIS_URL)"
XDIST ?= -n 2
# The integration and browser tests wait on processes (workers, beat, servers, Chromium) more
# than they compute: with three at a time the two cores were 27-60% idle for minutes, four at a
# time keep them busy. Process gwN uses Redis database 12 + N (tests/redis_db.py): 12 to 15.
INTEGRATION_XDIST ?= -n 4

test: dev-venv static browser-deps services mlflow-venv schemathesis-venv
	$(BIN)/ruff check .
	$(PG_ENV) $(PYTEST) --create-db $(XDIST) -m "not integration and not browser and not demo_story" --durations=10
	$(PG_ENV) $(PYTEST) --create-db $(INTEGRATION_XDIST) --dist loadfile --no-loadscope-reorder -m "integration or browser" --durations=10
	$(MAKE) --no-print-directory test-sqlite

test-postgres: dev-venv static browser-deps services mlflow-venv schemathesis-venv
	$(PG_ENV) $(PYTEST) --create-db $(XDIST) -m "not integration and not browser and not demo_story"
	$(PG_ENV) $(PYTEST) --create-db $(INTEGRATION_XDIST) --dist loadfile --no-loadscope-reorder -m "integration or browser"

test-sqlite: dev-venv
	env -u DATABASE_URL -u CELERY_BROKER_URL MLOPS_VAR_DIR=$$(mktemp -d) \
	  $(PYTEST) $(XDIST) tests -m "not postgres and not browser and not integration"

bench: dev-venv static services bench-evidently-venv bench-mlflow-venv bench-wrk bench-nannyml-venv
	DATABASE_URL="$(PG_URL)" $(BIN)/python -m bench

# MLflow's own server (the inventory benchmark's peer) in its own venv under bench/,
# never in the project's dependencies; wrk drives the load (Debian package).
BENCH_MLFLOW_VENV := bench/.venv-mlflow
$(BENCH_MLFLOW_VENV)/.installed:
	test -x $(BENCH_MLFLOW_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_MLFLOW_VENV)
	$(BENCH_MLFLOW_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_MLFLOW_VENV)/bin/python -m pip install --quiet 'mlflow==3.17.2'
	touch $@

bench-mlflow-venv: $(BENCH_MLFLOW_VENV)/.installed

bench-wrk:
	@command -v wrk >/dev/null 2>&1 || (apt-get $(APT_WAIT) update -qq && DEBIAN_FRONTEND=noninteractive apt-get $(APT_WAIT) install -y -qq wrk) \
	  || echo "wrk could not be installed: the benchmarks fall back to their Python load generator"

# Evidently (the monitoring benchmark's peer) needs pandas < 3, so it lives in its own
# virtual environment under bench/, outside the project's dependencies.
EVIDENTLY_VENV := bench/.venv-evidently
$(EVIDENTLY_VENV)/.installed:
	test -x $(EVIDENTLY_VENV)/bin/python || $(PYTHON) -m venv $(EVIDENTLY_VENV)
	$(EVIDENTLY_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(EVIDENTLY_VENV)/bin/python -m pip install --quiet 'evidently==0.7.23' 'pandas<3' pyarrow
	touch $@

bench-evidently-venv: $(EVIDENTLY_VENV)/.installed

# NannyML 0.13.1 (the performance-estimation benchmark's peer) needs pandas < 3 and imports
# statsmodels without declaring it: its own virtual environment under bench/.
NANNYML_VENV := bench/.venv-nannyml
$(NANNYML_VENV)/.installed:
	test -x $(NANNYML_VENV)/bin/python || $(PYTHON) -m venv $(NANNYML_VENV)
	$(NANNYML_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(NANNYML_VENV)/bin/python -m pip install --quiet 'nannyml==0.13.1' 'pandas<3' statsmodels pyarrow
	touch $@

bench-nannyml-venv: $(NANNYML_VENV)/.installed

lint: dev-venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf var .pytest_cache

# The MLflow tracking server the registry-sync tests talk to lives in its own venv
# (MLflow 3.17.2, the newest installable here), so its dependencies never meet ours.
$(MLFLOW_VENV)/.installed:
	test -x $(MLFLOW_VENV)/bin/python || $(PYTHON) -m venv $(MLFLOW_VENV)
	$(MLFLOW_VENV)/bin/python -m pip install --quiet 'mlflow==3.17.2'
	touch $(MLFLOW_VENV)/.installed

mlflow-venv: $(MLFLOW_VENV)/.installed

# Schemathesis (the API fuzzing run of tests/integration/test_schemathesis.py) in its own venv:
# its pinned dependencies (hypothesis, jsonschema, …) never meet ours.
$(SCHEMATHESIS_VENV)/.installed:
	test -x $(SCHEMATHESIS_VENV)/bin/python || $(PYTHON) -m venv $(SCHEMATHESIS_VENV)
	$(SCHEMATHESIS_VENV)/bin/python -m pip install --quiet 'schemathesis==4.32.5'
	touch $(SCHEMATHESIS_VENV)/.installed

schemathesis-venv: $(SCHEMATHESIS_VENV)/.installed
