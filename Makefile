# Journeys: `make run` tries the product, `make test` checks it. Both set themselves up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
# sam build needs a python3.12 on PATH (the Lambda runtime); pyenv machines keep one here.
# (pyenv's shims directory holds a python3.12 that only works when 3.12 is selected, so the
# real installation directories come first.)
PY312_DIR := $(shell dirname "$$(ls -d $$HOME/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null | tail -1 | grep . || command -v python3.12)")
export SAM_CLI_TELEMETRY := 0

.PHONY: run graphs test lint typecheck compile check-compiled schema bench build deploy-assets clean help browser

help:
	@echo "make run    compile workflows/ and run the whole product locally (RUN_ARGS='--speed 1d')"
	@echo "make graphs draw every workflow to build/graphs/<id>.html"
	@echo "make test   lint, type-check, check compiled output is current, run all test tiers"
	@echo "            (installs Debian's chromium for the dashboard's browser tests if missing)"
	@echo "make build  sam validate --lint and sam build (offline; what sam deploy ships)"
	@echo "make bench  run the benchmarks in bench/ and print their figures"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/journeys validate workflows/
	$(BIN)/journeys compile workflows/ --out state_machines/
	$(BIN)/journeys up $(RUN_ARGS)

# Every workflow drawn to build/graphs/<id>.html.
graphs: $(STAMP)
	$(BIN)/journeys graph workflows/ --format html --out build/graphs/

lint: $(STAMP)
	$(BIN)/ruff check layers functions tests bench
	$(BIN)/ruff format --check layers functions tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# CI fails when someone edits a workflow but forgets to recompile and commit.
check-compiled: $(STAMP)
	$(BIN)/journeys compile workflows/ --out state_machines/ --check
	$(BIN)/journeys schema --out schema/workflow.schema.json --check
	$(BIN)/python -m journeys.api --check docs/openapi.json

# Debian's Chromium and ChromeDriver for tests/browser (does nothing once they are installed).
browser:
	bash scripts/install-browser

test: lint typecheck check-compiled build browser
	$(BIN)/pytest

$(SAM):
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli

# What the layer ships besides the package: message templates and the workflow index.
deploy-assets:
	rm -rf layers/common/journeys/_deploy
	mkdir -p layers/common/journeys/_deploy
	cp -r workflows/templates layers/common/journeys/_deploy/templates
	cp state_machines/index.json layers/common/journeys/_deploy/index.json
	cp state_machines/*.view.json layers/common/journeys/_deploy/

# Offline: validates the template with cfn-lint and builds every function and the layer.
build: $(SAM) check-compiled deploy-assets
	@test -x "$(PY312_DIR)/python3.12" || { echo "sam build needs python3.12 on PATH"; exit 1; }
	$(SAM) validate --lint
	PATH="$(PY312_DIR):$$PATH" $(SAM) build --parallel

compile: $(STAMP)
	$(BIN)/journeys compile workflows/ --out state_machines/

schema: $(STAMP)
	$(BIN)/journeys schema --out schema/workflow.schema.json
	$(BIN)/python -m journeys.api docs/openapi.json

bench: $(STAMP)
	$(BIN)/python bench/bench_compiler.py
	$(BIN)/python bench/bench_router_calls.py
	$(BIN)/python bench/bench_journeys.py
	$(BIN)/python bench/bench_local_api.py
	$(BIN)/python bench/bench_dashboard.py

clean:
	rm -rf $(VENV) $(SAM_VENV) build .aws-sam .pytest_cache .mypy_cache .ruff_cache layers/common/journeys/_deploy
