# Everything a fresh machine with the Rust toolchain and Python 3.9+ needs.
#   make demo   build the package into .venv and run the demo
#   make test   build the wheel (from the sdist), lint, and run every test (Rust, and
#               Python against the installed wheel on asyncio, uvloop and trio)
#   make bench  the benchmarks against the peers (not part of make test)
#   make dev T=tests/test_every.py
#               the inner loop, once `make install` has made .venv: a debug build of
#               the extension into .venv (quicker than install's release build), then
#               pytest -x -q on T (a file, a node id, pytest options; default: the suite)
.DEFAULT_GOAL := test
.PHONY: demo test install dev lint lint-only redis-server test-rust test-python wheel test-wheel format clean bench

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

lint: install lint-only

# The checks, on whatever .venv holds (`make install`'s editable build, or the
# wheel `make test` installs).
lint-only:
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

# The suite against the editable install (the inner loop's; `make test` runs it
# against the wheel instead).
test-python: install redis-server
	$(BIN)/python -m pytest

# The distributions as users get them: the sdist, and the release wheel built
# from it (so the sdist is known to build) — manylinux abi3, linked against an
# old glibc with zig — then installed into .venv with the dev tools (not
# editable): lint and the suite run against the installed package.
DIST := dist
wheel: $(BIN)/python
	$(BIN)/python -m pip install --quiet "maturin>=1.9,<2" ziglang
	rm -rf $(DIST)
	$(BIN)/maturin sdist --out $(DIST)
	# maturin finds zig through the ziglang package of the python on PATH.
	PATH="$(CURDIR)/$(BIN):$$PATH" CARGO_TARGET_DIR="$(CURDIR)/target" \
		MATURIN_PEP517_ARGS="--locked --zig --compatibility manylinux2014" \
		$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir $(DIST) $(DIST)/*.tar.gz
	$(BIN)/python tests/check_wheel.py $(DIST)
	$(BIN)/python -m pip install --quiet --force-reinstall --no-deps $(DIST)/*.whl
	$(BIN)/python -m pip install --quiet "$$(ls $(DIST)/*.whl)[dev]"
	$(BIN)/python -c "import agent_triggers as m; assert 'site-packages' in m.__file__, m.__file__"

# The suite against the installed wheel, every async test on asyncio, uvloop and
# trio, on two workers (pytest-xdist: each test process has its own runtime).
test-wheel: wheel redis-server
	$(BIN)/python -c "import agent_triggers as m; assert 'site-packages' in m.__file__, m.__file__"
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2
	# The wheel alone (its own dependencies only) and no Rust toolchain: the demo
	# and the trio example, with cargo off PATH.
	rm -rf .venv-wheel
	$(PYTHON) -m venv .venv-wheel
	.venv-wheel/bin/python -m pip install --quiet $(DIST)/*.whl trio
	env PATH=/usr/bin:/bin sh -c '! command -v cargo && .venv-wheel/bin/python -m agent_triggers --seconds 1 \
		&& .venv-wheel/bin/python examples/trio_agent.py'

# In order: the wheel (and .venv from it), lint, the Rust tests, the suite.
test: wheel lint-only test-rust test-wheel

format: install
	cargo fmt --all
	$(BIN)/ruff format python tests examples benchmarks
	$(BIN)/ruff check --fix python tests examples benchmarks

# Benchmarks against plain asyncio and APScheduler (benchmarks/README.md); ~15 min, 3 rounds.
bench: $(BIN)/python
	$(BIN)/python -m pip install --quiet --editable ".[dev,bench]"
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .venv-wheel $(DIST) target python/agent_triggers/*.so
