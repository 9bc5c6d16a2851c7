# pmbot developer targets. `make test` works on a fresh machine that has only python3 and pip: it
# bootstraps a pinned uv into .uv/, builds .venv from uv.lock (exactly the locked set) and, when run as
# root on Debian, installs the redis-server and PostgreSQL it needs.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

# uv itself is pinned too: the lock's format and resolution are uv's, so every machine uses the same one.
UV_VERSION := 0.13.9
UV_DIR     := .uv
UV         := $(UV_DIR)/bin/uv
# uv never downloads a Python of its own here; it uses $(PYTHON). .venv is the project environment.
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Byte-compile at install time, as pip does: with PYTHONDONTWRITEBYTECODE set (or a read-only venv)
# nothing is ever cached later, and `pmbot --help` would pay ~150 ms of compiling on every run.
export UV_COMPILE_BYTECODE := 1
# Trust the machine's certificate store (as pip does), not only uv's bundled roots: behind a TLS proxy
# with its own CA, or with SSL_CERT_FILE unset, downloads fail otherwise ("invalid peer certificate").
export UV_SYSTEM_CERTS := 1
UV_SYNC := $(UV) sync --quiet --locked --extra dev --python $(PYTHON)

.PHONY: install test lint bench demo services lock upgrade check-lock clean help

help:
	@echo "make demo      install, then run-all (snipe + copy, dry-run) against pmbot sim at 10x for ~2 min"
	@echo "make install   create .venv with exactly the versions in uv.lock (pmbot editable + dev tools)"
	@echo "make test      install if needed, make sure redis-server and PostgreSQL exist, run the test suite"
	@echo "make lint      ruff + mypy"
	@echo "make bench     run the benchmarks, print a table, write bench/results.json"
	@echo "make lock      after editing dependencies in pyproject.toml: re-resolve uv.lock (keeping every"
	@echo "               other pin), install it and run the suite"
	@echo "make upgrade   move uv.lock to the newest versions pyproject.toml allows, install, run the suite"
	@echo "make check-lock  fail if uv.lock is stale or .venv differs from it"

# Bootstrap: pip puts uv's binary in .uv/bin (no venv module, no --user site, works under PEP 668).
$(UV):
	@echo "bootstrapping uv $(UV_VERSION) into $(UV_DIR)/"
	@$(PYTHON) -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
	  --target $(UV_DIR) 'uv==$(UV_VERSION)'

# --locked: install the lock as it is, and fail (instead of re-resolving) when pyproject.toml changed
# without `make lock`. uv sync is exact: whatever is not in the lock is removed from .venv. It runs
# every time (about 0.1 s when nothing changed), so a hand-installed or upgraded package never lingers.
install: | $(UV)
	@echo "syncing .venv with uv.lock"
	@$(UV_SYNC)

check-lock: | $(UV)
	$(UV) lock --check
	$(UV) sync --check --locked --extra dev --python $(PYTHON)

lock: | $(UV)
	$(UV) lock
	$(MAKE) test

upgrade: | $(UV)
	$(UV) lock --upgrade
	$(MAKE) test

services:
	@if ! command -v redis-server >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing redis-server (Debian package)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	  else \
	    echo "redis-server is missing: install it (Debian: sudo apt-get install redis-server)." >&2; \
	    echo "Without it the Redis tests are skipped (or fail with PMBOT_REQUIRE_SERVICES=1)." >&2; \
	  fi; \
	fi
	@# PostgreSQL: the tests start their own cluster from Debian's binaries (/usr/lib/postgresql/*/bin).
	@if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 && ! command -v postgres >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing postgresql (Debian package)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else \
	    echo "PostgreSQL is missing: install it (Debian: sudo apt-get install postgresql)." >&2; \
	    echo "Without it the PostgreSQL tests are skipped (or fail with PMBOT_REQUIRE_SERVICES=1)." >&2; \
	  fi; \
	fi

test: install services
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check pmbot tests bench scripts
	$(BIN)/ruff format --check pmbot tests bench scripts || true
	$(BIN)/mypy

# The README's first command: a fresh machine, offline. See scripts/demo.py for the steps.
demo: install
	@$(BIN)/python scripts/demo.py

bench: install services
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(UV_DIR) .pytest_cache .ruff_cache .mypy_cache .hypothesis bench/results.json
