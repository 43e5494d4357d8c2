# Journeys: `make run` tries the product, `make test` checks it. Both set themselves up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck compile check-compiled schema bench clean help

help:
	@echo "make run    validate and compile every workflow in workflows/, then show the graph of one"
	@echo "make test   lint, type-check, check compiled output is current, run all test tiers"
	@echo "make bench  run the benchmarks in bench/ and print their figures"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/journeys validate workflows/
	$(BIN)/journeys compile workflows/ --out state_machines/
	$(BIN)/journeys graph workflows/ --format html --out build/graphs/
	@echo
	@echo "Compiled state machines: state_machines/. Open build/graphs/cart-abandonment.html to see a journey."

lint: $(STAMP)
	$(BIN)/ruff check layers functions tests bench
	$(BIN)/ruff format --check layers functions tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# CI fails when someone edits a workflow but forgets to recompile and commit.
check-compiled: $(STAMP)
	$(BIN)/journeys compile workflows/ --out state_machines/ --check
	$(BIN)/journeys schema --out schema/workflow.schema.json --check

test: lint typecheck check-compiled
	$(BIN)/pytest

compile: $(STAMP)
	$(BIN)/journeys compile workflows/ --out state_machines/

schema: $(STAMP)
	$(BIN)/journeys schema --out schema/workflow.schema.json

bench: $(STAMP)
	$(BIN)/python bench/bench_compiler.py

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
