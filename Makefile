# Two commands for users and CI (see README.md):
#   make repro   install everything, then run the pipeline (dvc repro) on the embedded sample
#   make test    install everything, then lint and run the whole test suite
# Both are idempotent: installs re-run only when pyproject.toml or the
# constraints change, system packages only when one is missing.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
CONSTRAINTS := requirements/constraints.txt
# Debian packages the pipeline needs (git: DVC works on a git repository;
# libfluidsynth3: the SoundFont renderer behind pyfluidsynth, without the 142 MB
# SoundFont and Qt that the `fluidsynth` package recommends).
APT_PACKAGES := git libfluidsynth3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export DVC_SITE_CACHE_DIR := $(CURDIR)/.dvc/tmp/site-cache
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: repro test lint setup system clean-envs

repro: setup
	PATH="$(BIN):$$PATH" dvc repro

test: setup lint
	PATH="$(BIN):$$PATH" pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

setup: system $(VENV)/.installed .dvc/config.local

system:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi

# The data environment: the pipeline library, DVC and every stage's libraries.
$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	set -o pipefail; $(BIN)/python -m pip install -q --upgrade "pip>=24" 2>&1 | sed '/is ignored: it is neither/d'
	set -o pipefail; $(BIN)/python -m pip install -q -c $(CONSTRAINTS) -e '.[data,dev]' 2>&1 | sed '/is ignored: it is neither/d'
	$(BIN)/python -m pip check
	touch $@

# Keep DVC's site cache inside the repository's ignored files.
.dvc/config.local:
	$(BIN)/dvc config --local core.site_cache_dir "$(DVC_SITE_CACHE_DIR)"

clean-envs:
	rm -rf $(VENV) $(VENV)-*
