# Orchardist: `make run` serves, `make test` checks everything. Each target installs what
# it needs (the virtualenv, pinned pip packages, Debian packages), so a fresh machine needs
# nothing else.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= orchardist-data
SERVER_NAME ?= localhost
HOST ?= 127.0.0.1
PORT ?= 8443
# libldap2-dev/libsasl2-dev build python-ldap; slapd and a Samba AD DC are the directories
# the tests sign in to; Chromium renders /api/v1/docs in a test (and the screenshots);
# nginx runs deploy/nginx.conf in front of two servers in a test (its own process; Debian
# also starts nginx.service on port 80: `systemctl disable --now nginx` where unwanted).
DEBS := scep openssl slapd ldap-utils libldap2-dev libsasl2-dev \
	samba samba-ad-dc samba-ad-provision chromium nginx
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.DEFAULT_GOAL := help
.PHONY: help venv debs run test lint bench clean screenshots fuzz

help: ## List the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-6s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml constraints.txt | debs
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

debs: ## Install the Debian packages: scepclient, openssl, slapd, Samba AD, LDAP headers, Chromium, nginx
	@missing=$$(for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi

run: venv ## Set up, then serve HTTPS on 127.0.0.1:8443 (SQLite, self-signed CA)
	@test -f $(DATA_DIR)/orchardist.toml || $(BIN)/orchardist --data-dir $(DATA_DIR) init --hostname $(SERVER_NAME)
	$(BIN)/orchardist --data-dir $(DATA_DIR) serve --host $(HOST) --port $(PORT)

lint: venv ## ruff (lint + format), mypy, import-linter layering contract
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# Four pytest-xdist workers: many tests spend most of their time waiting for server
# processes and virtual devices, so two workers per core (on CI's two) keep the cores busy.
# A test file stays on one worker, so its module-scoped fixtures are made once.
# TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 4

test: venv debs lint ## Lint, then the whole suite (PostgreSQL too when ORCHARDIST_TEST_POSTGRES_URL is set)
	$(BIN)/pytest -n $(TEST_WORKERS) --maxprocesses=4 --dist loadfile

# The fuzz tests (tests/fuzz) with FUZZ_EXAMPLES random inputs per target instead of the
# suite's few derandomized ones; ends with a table of inputs per target. (Hypothesis' warning
# about a large example's repr would otherwise replace the failure a huge input found.)
FUZZ_EXAMPLES ?= 2000

fuzz: venv ## Fuzz every parser of outside input (FUZZ_EXAMPLES per target); prints the counts
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -n auto --dist load -q -W ignore::hypothesis.errors.HypothesisWarning tests/fuzz

bench: venv ## Benchmark scenarios: prints a table, writes bench/results.json
	@dpkg -s wrk >/dev/null 2>&1 || (DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends wrk)
	$(BIN)/python -m bench

screenshots: venv ## Chromium screenshots: the enrollment and app catalog pages (phone) and every console page (desktop, tablet) into docs/
	@dpkg -s chromium >/dev/null 2>&1 || (DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends chromium)
	$(BIN)/python -m pip install -q -c constraints.txt playwright
	$(BIN)/python tools/screenshots.py
	$(BIN)/python tools/catalog_screenshots.py
	$(BIN)/python tools/console_screenshots.py

clean: ## Remove the virtualenv and caches (not the data folder)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
