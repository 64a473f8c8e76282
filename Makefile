# Every target creates the virtual environment it needs: `make demo` and `make test`
# work on a fresh machine with only Python 3.11 and make.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
version := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE   ?= plray:$(version)

.PHONY: demo test test-fast lint format check-structure image bench bench-agents bench-extraction bench-stochastic bench-serve bench-pipeline clean help

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=python3 ...'" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and pinned: an unpinned torch pulls several GB of CUDA packages.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

demo: $(STAMP)  ## run the main job: the experiment pipeline on a small FourRooms study (embedded local Ray, a few minutes)
	RAY_AUTH_MODE=disabled $(VENV)/bin/plray run configs/experiments/demo.yaml --run-dir runs/demo

test: $(STAMP)  ## lint (ruff, structure, mypy), then the whole test suite
	$(VENV)/bin/ruff check plray tests bench
	$(PY) scripts/check_structure.py
	$(VENV)/bin/mypy
	$(PY) -m pytest tests; rc=$$?; if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

test-fast: $(STAMP)  ## the suite without tests marked slow
	$(PY) -m pytest tests -m "not slow"

lint: $(STAMP)  ## ruff lint and format check; no import cycles, no function over 80 lines; mypy
	$(VENV)/bin/ruff check plray tests bench
	$(VENV)/bin/ruff format --check plray tests bench
	$(PY) scripts/check_structure.py
	$(VENV)/bin/mypy

check-structure: $(STAMP)  ## list import cycles (module-level) and functions over 80 lines in plray/ and bench/
	$(PY) scripts/check_structure.py --deferred

format: $(STAMP)  ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix plray tests bench
	$(VENV)/bin/ruff format plray tests bench

bench: $(STAMP)  ## FourRooms extraction benchmark (minutes; writes bench/results/*.json and *.md)
	$(PY) bench/fourrooms_extraction.py

bench-agents: $(STAMP)  ## RLlib agent training at two budgets, success and Q_NMSE (about an hour on 2 cores)
	$(PY) bench/agents.py

bench-extraction: $(STAMP)  ## neural P-learning from the oracle, unseen goals, cross-model NMSE (about 40 minutes)
	$(PY) bench/extraction.py

bench-stochastic: $(STAMP)  ## Gaussian P-learning on MountainCar with process noise, against the true noise (about 30 minutes)
	$(PY) bench/stochastic_extraction.py

bench-pipeline: $(STAMP)  ## FourRooms study with learned agents vs the paper, actor throughput, demo wall-clock (about an hour)
	$(PY) bench/pipeline.py

bench-serve: $(STAMP)  ## Ray Serve API latency, throughput and a 60 s load test (a few minutes)
	$(PY) bench/serve.py

image:  ## build the container image (deploy/Dockerfile; needs a Docker engine): make image IMAGE=registry/plray:tag
	docker build -f deploy/Dockerfile -t $(IMAGE) .

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
