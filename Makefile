# Everything a fresh machine with the Rust toolchain and Python 3.9+ needs.
#   make demo   build the package into .venv and run the demo
#   make test   build, lint and run every test (Rust and Python)
#   make bench  the benchmarks against the peers (not part of make test)
#   make dev T=tests/test_every.py
#               the inner loop, once `make install` has made .venv: a debug build of
#               the extension into .venv (quicker than install's release build), then
#               pytest -x -q on T (a file, a node id, pytest options; default: the suite)
.DEFAULT_GOAL := test
.PHONY: demo test install dev lint redis-server test-rust test-python test-wheel format clean bench

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

T ?=
dev: $(BIN)/python redis-server
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/maturin develop
	$(BIN)/python -m pytest -x -q $(T)

demo: $(BIN)/python
	$(BIN)/python -m pip install --quiet .
	$(BIN)/python -m agent_triggers

lint: install
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	# The maintainers' docs (private items too: the bindings' API is Python's).
	RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --document-private-items
	$(BIN)/ruff check python tests examples benchmarks
	$(BIN)/ruff format --check python tests examples benchmarks
	$(BIN)/mypy --strict
	$(BIN)/pyright --pythonpath $(BIN)/python --project pyproject.toml
	# The stub against the built module (the allowlist says why each entry is there).
	$(BIN)/python -m mypy.stubtest agent_triggers._core --allowlist stubtest-allowlist.txt
	$(BIN)/actionlint .github/workflows/*.yml

# The fleet tests run against a real redis-server (each test starts its own).
redis-server:
	scripts/ensure-redis-server

test-rust: redis-server
	cargo test --workspace --locked

test-python: install redis-server
	$(BIN)/python -m pytest

# The release wheel as users get it: manylinux abi3 (linked against an old glibc
# with zig), installed in a clean virtualenv, the suite run against the installed
# package; and the sdist, built and installed from source.
DIST := dist
test-wheel: $(BIN)/python redis-server
	$(BIN)/python -m pip install --quiet "maturin>=1.9,<2" ziglang
	rm -rf $(DIST) .venv-wheel .venv-sdist
	# maturin finds zig through the ziglang package of the python on PATH.
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/maturin build --release --locked --zig \
		--compatibility manylinux2014 --out $(DIST)
	$(BIN)/maturin sdist --out $(DIST)
	$(BIN)/python tests/check_wheel.py $(DIST)
	$(PYTHON) -m venv .venv-wheel
	.venv-wheel/bin/python -m pip install --quiet $(DIST)/*.whl pytest "pytest-asyncio>=1.4" pytest-timeout hypothesis uvloop "redis>=5" \
		"google-antigravity>=0.1.22; python_version >= '3.10' and platform_machine != 'aarch64'"
	.venv-wheel/bin/python -c "import agent_triggers as m; assert 'site-packages' in m.__file__, m.__file__"
	.venv-wheel/bin/python -m pytest -q -p no:cacheprovider
	$(PYTHON) -m venv .venv-sdist
	.venv-sdist/bin/python -m pip install --quiet $(DIST)/*.tar.gz
	.venv-sdist/bin/python -m agent_triggers --seconds 1
	# The wheel needs no Rust toolchain: the demo, with cargo off PATH.
	env PATH=/usr/bin:/bin sh -c '! command -v cargo && .venv-wheel/bin/python -m agent_triggers --seconds 1' 

test: lint test-rust test-python test-wheel

format: install
	cargo fmt --all
	$(BIN)/ruff format python tests examples benchmarks
	$(BIN)/ruff check --fix python tests examples benchmarks

# Benchmarks against plain asyncio and APScheduler (benchmarks/README.md); < 5 min.
bench: $(BIN)/python
	$(BIN)/python -m pip install --quiet --editable ".[dev,bench]"
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .venv-wheel .venv-sdist $(DIST) target python/agent_triggers/*.so
