# One entry point for chores; CI (.ci/run) calls `make test`.
CARGO ?= cargo

.PHONY: deps demo test test-rust test-loom node-deps test-node test-python test-dist dist check check-sdk bench fmt

## Debian packages the build and tests need, installed when missing: protoc (the etcd-client
## crate generates etcd's gRPC API at build time) and etcd (the cluster tests start their own).
deps:
	bash scripts/ensure-deps.sh

## Run the main job: a simulated test stand written and read back.
demo: deps
	$(CARGO) run --release -p telemetron -- demo

## Run every test (what CI runs): the checks (fmt, clippy, SDK linters) first, as redb does.
test: check test-rust test-loom test-node test-python test-dist

test-rust: deps
	$(CARGO) build --release -p telemetron
	$(CARGO) test -p telemetron --release

## Loom models of the relay's wake-up and spin protocols (core/tests/relay_loom.rs). Its own
## target directory: the cfg flag changes every crate's build, so it builds the engine alone
## (--no-default-features: no server, client backends, Arrow or Parquet to compile again).
test-loom:
	RUSTFLAGS="--cfg telemetron_loom" CARGO_TARGET_DIR=target/loom $(CARGO) test -p telemetron --no-default-features --test relay_loom --release

## `npm ci` installs the locked devDependencies (package-lock.json is not rewritten) and
## builds the addon (prepare -> napi build --release). A prerequisite of test-node and dist,
## so `make test` runs it once (napi build recompiles the addon on every call).
node-deps: deps
	npm ci

## Node SDK: node:test runs tests/node/ against an embedded engine and a `telemetron serve`
## node (the dashboard's tests drive Debian's Chromium, installed by
## scripts/ensure-chromium.sh when missing).
test-node: node-deps
	bash scripts/ensure-chromium.sh
	npm test

## Python SDK: `pip install '.[test]'` builds the extension (maturin, release) into the
## virtualenv $(VENV), then pytest runs tests/python/ against an embedded engine and a
## `telemetron serve` node, and executes notebooks/.
PYTHON ?= python3
VENV ?= .venv
test-python: deps
	$(CARGO) build --release -p telemetron
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet '.[test]'
	$(VENV)/bin/python -m pytest tests/python

## Packages as users install them: an abi3 manylinux wheel (maturin) and an npm tarball that
## carries the prebuilt addon, both in dist/. Both builds share target/ with the rest.
dist: deps node-deps
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet 'maturin>=1.16,<2'
	rm -rf dist && mkdir -p dist
	$(VENV)/bin/maturin build --release --out dist
	npm pack --ignore-scripts --pack-destination dist

## Install each package into a fresh environment with no Rust toolchain on PATH and run the
## README's Python and TypeScript quick starts from it (scripts/test_dist.py).
test-dist: dist
	$(PYTHON) scripts/test_dist.py

## Formatting and lints; then the engine alone (`default-features = false`: no server, no
## remote backend, no CLI) must build without warnings and without the network stack.
## The SDK layers are linted by check-sdk. Clippy runs in the release profile: its build
## scripts (ring's and zstd's C code, etcd's generated gRPC API) and proc-macros are then
## the ones every release build below uses, built once.
check: deps check-sdk
	$(CARGO) fmt --all -- --check
	$(PYTHON) scripts/check_unified.py
	$(CARGO) clippy --workspace --all-targets --release -- -D warnings
	$(CARGO) clippy -p telemetron --no-default-features --all-targets --release -- -D warnings
	! $(CARGO) tree -p telemetron --no-default-features -e normal | grep -E 'axum|hyper|rustls|tungstenite|webpki|clap'

fmt:
	$(CARGO) fmt --all

## The SDK layers' lints (config in pyproject.toml and biome.json): ruff (lint and format)
## and mypy for the Python package, stubtest keeping `_native.pyi` true to the built
## extension (so `.[lint]` builds it), and biome for lib/ (tsc --strict runs in npm test).
check-sdk: deps
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet '.[lint]'
	$(VENV)/bin/ruff check
	$(VENV)/bin/ruff format --check
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m mypy.stubtest telemetron._native
	npm ci --ignore-scripts
	npx biome ci

## The benchmark figures quoted in docs/benchmarks.md.
bench:
	$(CARGO) build --release -p telemetron
	./target/release/telemetron bench ingest --channels 100 --batch 10000 --durability interval
	./target/release/telemetron bench ingest --channels 10000 --batch 1000 --durability interval
	./target/release/telemetron bench ingest --channels 1 --batch 1 --commit-every 1000
	./target/release/telemetron bench read --samples 100000000
	./target/release/telemetron bench commit --durability commit
