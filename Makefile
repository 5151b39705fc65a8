# wsad-hpo: two commands on a fresh machine
#   make demo   install, then run the quickstart campaign (synthetic data, journal storage,
#               2 local workers): create -> run -> export -> final -> report
#   make test   install, start PostgreSQL + a one-node SLURM cluster, run the whole test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint services services-down clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# the CPU build of torch lies on this disk; any other spec downloads a multi-GB CUDA build
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/hpo pipeline examples/quickstart.toml --workers 2

services: setup
	bash deploy/install-system-deps.sh
	bash deploy/postgres.sh --role wsad_test --db wsad_test
	bash deploy/slurm-up.sh

services-down:
	-bash deploy/slurm-down.sh --all

# the services are stopped whatever the outcome; missing services fail the run, not skip
test: services
	$(VENV)/bin/ruff check .
	WSAD_REQUIRE_SERVICES=1 $(VENV)/bin/python -m pytest -q; status=$$?; \
	bash deploy/slurm-down.sh --all; exit $$status

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf runs .pytest_cache .ruff_cache
