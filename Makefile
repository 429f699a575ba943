# Shortcuts for newcomers: each target is one `invoke` call inside the project venv.
# `make help` lists them; `invoke --list` shows the same tasks with their flags (`invoke --help TASK`).
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
INV := $(VENV)/bin/invoke
STAMP := $(VENV)/.installed

.PHONY: help venv lint demo test bench setup crop validate gen-reg smoke train compare rank deploy clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP) ## create .venv and install requirements.txt and requirements-dev.txt

lint: $(STAMP) ## ruff (ruff.toml) and mypy (mypy.ini) on scripts/, tasks.py, bench/
	$(VENV)/bin/ruff check scripts tasks.py bench
	$(VENV)/bin/mypy

demo: $(STAMP) ## run the offline pipeline on the bundled example character
	$(INV) demo

test: lint ## lint, then run the test suite
	$(INV) test

bench: $(STAMP) ## run the benchmarks (ratios measured side by side)
	$(INV) bench

setup: $(STAMP) ## init sd-scripts, build the kohya venv, check device and model
	$(INV) setup

crop: $(STAMP) ## crop the example character (CHARACTER=name to pick another)
	$(INV) crop --character $(or $(CHARACTER),example)

validate: $(STAMP) ## validate a character's dataset
	$(INV) validate --character $(or $(CHARACTER),example)

gen-reg: $(STAMP) ## make regularization images on ComfyUI
	$(INV) gen-reg --character $(or $(CHARACTER),example)

smoke: $(STAMP) ## 5-step training smoke test
	$(INV) smoke --character $(or $(CHARACTER),example)

train: $(STAMP) ## full training run
	$(INV) train --character $(or $(CHARACTER),example)

compare: $(STAMP) ## render the checkpoint x prompt grid on ComfyUI
	$(INV) compare --character $(or $(CHARACTER),example)

rank: $(STAMP) ## propose the best checkpoint with measured reasons (rank/report.html)
	$(INV) rank --character $(or $(CHARACTER),example)

deploy: $(STAMP) ## deploy a checkpoint: make deploy STEP=600 (or STEP=proposed)
	$(INV) deploy --character $(or $(CHARACTER),example) --step $(STEP)

clean: ## remove build/ and output/ (never dataset tables or captions)
	rm -rf build output
