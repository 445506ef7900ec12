# The README's two commands: `make run` and `make test`. Both set up what is missing first.
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup test lint fast unit nightly bench run clean

setup:
	@./scripts/setup.sh

lint: setup
	$(BIN)/ruff check harness tests bench
	$(BIN)/mypy

test: setup lint
	$(BIN)/pytest -m "not nightly" $(PYTEST_ARGS)

# The fast tier: unit tests only, hermetic (no root, QEMU, network or Azurite), no set-up step (seconds).
fast:
	@test -x $(BIN)/pytest || { echo "make fast: no $(BIN)/pytest yet; run 'make setup' once"; exit 2; }
	$(BIN)/pytest tests/unit -q $(PYTEST_ARGS)

unit: fast

nightly: setup
	$(BIN)/pytest -m nightly $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m bench

run: setup
	$(BIN)/harness run debian-12 --to local:gallery

clean:
	rm -rf builds gallery .pytest_cache .mypy_cache .ruff_cache
