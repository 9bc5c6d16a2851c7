# pmbot developer targets. `make test` works on a fresh machine: it builds .venv and, when run as
# root on Debian, installs the redis-server it needs (PostgreSQL joins with the PostgreSQL store).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.install-stamp
PYTEST_ARGS ?=

.PHONY: install test lint bench services clean help

help:
	@echo "make install   create .venv and install pmbot (editable) with dev tools"
	@echo "make test      install if needed, make sure redis-server exists, run the test suite"
	@echo "make lint      ruff + mypy"
	@echo "make bench     run the benchmarks, print a table, write bench/results.json"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

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

test: install services
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check pmbot tests bench
	$(BIN)/ruff format --check pmbot tests bench || true
	$(BIN)/mypy

bench: install services
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis bench/results.json
