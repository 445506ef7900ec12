# The README's two commands: `make run` and `make test`. Both set up what is missing first.
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup test lint unit nightly bench run clean

setup:
	@./scripts/setup.sh

lint: setup
	$(BIN)/ruff check harness tests bench
	$(BIN)/mypy

test: setup lint
	$(BIN)/pytest -m "not nightly" $(PYTEST_ARGS)

nightly: setup
	$(BIN)/pytest -m nightly $(PYTEST_ARGS)

unit: setup
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m bench.run

run: setup
	$(BIN)/harness run debian-12 --to local:gallery

clean:
	rm -rf builds gallery .pytest_cache .mypy_cache .ruff_cache
