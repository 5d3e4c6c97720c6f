# Everything a fresh machine with the Rust toolchain and Python 3.9+ needs.
#   make demo   build the package into .venv and run the demo
#   make test   build, lint and run every test (Rust and Python)
#   make bench  the benchmarks against the peers (not part of make test)
.DEFAULT_GOAL := test
.PHONY: demo test install lint test-rust test-python format clean bench

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The cdylib links no libpython (it is an extension module), also under cargo.
export PYO3_BUILD_EXTENSION_MODULE := 1

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Builds the extension (release) and installs the package, editable, with the
# dev tools; re-run after any change to the Rust code.
install: $(BIN)/python
	$(BIN)/python -m pip install --quiet --editable ".[dev]"

demo: $(BIN)/python
	$(BIN)/python -m pip install --quiet .
	$(BIN)/python -m agent_triggers

lint: install
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	$(BIN)/ruff check python tests examples benchmarks
	$(BIN)/ruff format --check python tests examples benchmarks
	$(BIN)/mypy --strict
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

test-rust:
	cargo test --workspace --locked

test-python: install
	$(BIN)/python -m pytest

test: lint test-rust test-python

format: install
	cargo fmt --all
	$(BIN)/ruff format python tests examples benchmarks
	$(BIN)/ruff check --fix python tests examples benchmarks

# Benchmarks against plain asyncio and APScheduler (benchmarks/README.md); < 5 min.
bench: $(BIN)/python
	$(BIN)/python -m pip install --quiet --editable ".[dev,bench]"
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) target python/agent_triggers/*.so
