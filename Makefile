# Shortcuts for newcomers: each target is one `invoke` call inside the project venv.
# `make help` lists them; `invoke --list` shows the same tasks with their flags (`invoke --help TASK`).
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
INV := $(VENV)/bin/invoke
STAMP := $(VENV)/.installed
# Quoted in every recipe, so CHARACTER="my char" stays one word; names with a double quote are not supported.
CHARACTER_ARG = $(or $(CHARACTER),example)

.PHONY: help venv lint demo test test-models bench mutants setup crop boxes boxes-docs validate gen-reg smoke train compare rank deploy all clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP) ## create .venv and install requirements.txt and requirements-dev.txt

lint: $(STAMP) ## ruff (ruff.toml) and mypy (mypy.ini) on scripts/, tasks.py, bench/, tools/, tests/
	$(VENV)/bin/ruff check scripts tasks.py bench tools tests
	$(VENV)/bin/mypy

demo: $(STAMP) ## run the offline pipeline on the bundled example character
	$(INV) demo

test: lint ## lint, then run the test suite
	$(INV) test

# The dino/clip embedder tests need torch + transformers, which the project venv never has: a
# separate .venv-models (git-ignored) holds them. transformers 4.44.0 is what the pinned sd-scripts
# requires (5.x needs torchvision for its image processors). Minutes the first time; not in `make test`.
VENV_MODELS := .venv-models
STAMP_MODELS := $(VENV_MODELS)/.installed

$(STAMP_MODELS):
	test -x $(VENV_MODELS)/bin/python || $(PYTHON) -m venv $(VENV_MODELS)
	$(VENV_MODELS)/bin/python -m pip install --quiet --disable-pip-version-check torch==2.13.0 "transformers==4.44.0" pillow "numpy<=2.0"
	touch $(STAMP_MODELS)

test-models: $(STAMP) $(STAMP_MODELS) ## the dino/clip embedder tests with tiny random models (builds .venv-models)
	TEST_TORCH_PYTHON="$(abspath $(VENV_MODELS))/bin/python" $(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/imaging/test_model_embed.py

bench: $(STAMP) ## run the benchmarks (ratios measured side by side)
	$(INV) bench

mutants: $(STAMP) ## mutation run: a fixed list of plausible bugs, kill ratio and survivors (minutes)
	$(VENV)/bin/python -m tools.mutants

setup: $(STAMP) ## init sd-scripts, build the kohya venv, check device and model
	$(INV) setup

crop: $(STAMP) ## crop the example character (CHARACTER=name to pick another)
	$(INV) crop --character "$(CHARACTER_ARG)"

boxes: $(STAMP) ## draw every crop box on its sheet, flag cuts, list uncovered figures
	$(INV) boxes --character $(or $(CHARACTER),example)

boxes-docs: $(STAMP) ## redraw docs/boxes_example.png (the README's overlay) from the example
	$(INV) boxes-docs

validate: $(STAMP) ## validate a character's dataset
	$(INV) validate --character "$(CHARACTER_ARG)"

gen-reg: $(STAMP) ## make regularization images on ComfyUI
	$(INV) gen-reg --character "$(CHARACTER_ARG)"

smoke: $(STAMP) ## 5-step training smoke test
	$(INV) smoke --character "$(CHARACTER_ARG)"

train: $(STAMP) ## full training run
	$(INV) train --character "$(CHARACTER_ARG)"

compare: $(STAMP) ## render the checkpoint x prompt grid on ComfyUI
	$(INV) compare --character "$(CHARACTER_ARG)"

rank: $(STAMP) ## propose the best checkpoint with measured reasons (rank/report.html)
	$(INV) rank --character "$(CHARACTER_ARG)"

deploy: $(STAMP) ## deploy a checkpoint: make deploy STEP=600 (or STEP=proposed)
	$(if $(strip $(STEP)),,$(error make deploy needs the checkpoint step to deploy: make deploy STEP=600 or STEP=proposed (the steps are listed by `invoke status` or the compare page)))
	$(INV) deploy --character "$(CHARACTER_ARG)" --step "$(strip $(STEP))"

all: $(STAMP) ## every stage not done yet, stopping at the two gates: make all CHARACTER=name
	$(INV) all --character "$(CHARACTER_ARG)"

clean: ## remove build/ and output/ (never dataset tables or captions)
	rm -rf build output
