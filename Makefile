# rvclab: `make demo` sets up and runs the main job; `make test` sets up and runs every test.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# The install is redone only when what defines it changes.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
PYTEST_FLAGS := -p no:cacheprovider --strict-markers --durations=20
# Two pytest workers (pytest-xdist), one test file or notebook each at a time, in the order given:
# the longest files first, so neither worker is left with a long one at the end.
TEST_WORKERS ?= 2
XDIST_FLAGS := -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder
LONGEST_FIRST := tests/test_browser.py notebooks/06_documented_fixes.ipynb notebooks/05_voice_conversion.ipynb
NBVAL_FLAGS := --nbval --nbval-sanitize-with notebooks/sanitize.cfg --nbval-cell-timeout=900

.PHONY: setup test test-full test-py test-nb demo lab lint bench weights clean notebooks-sync notebooks-run

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh "$(VENV)" "$(STAMP)"

# pytest exits 5 when it collects nothing: that is a failure here too.
test: setup
	$(PY) -m pytest $(PYTEST_FLAGS) $(XDIST_FLAGS) $(LONGEST_FIRST) tests $(NOTEBOOKS) $(NBVAL_FLAGS)

# The Python tests with every full-size configuration (`make test` runs one per run, in rotation:
# tests/test_full_matrix.py, docs/parity.md "What is tested where").
test-full: setup
	RVCLAB_FULL_MATRIX=all $(PY) -m pytest $(PYTEST_FLAGS) $(XDIST_FLAGS) tests

test-py: setup
	$(PY) -m pytest $(PYTEST_FLAGS) $(XDIST_FLAGS) tests

test-nb: setup
	$(PY) -m pytest $(PYTEST_FLAGS) $(XDIST_FLAGS) $(NOTEBOOKS) $(NBVAL_FLAGS)

demo: setup
	$(VENV)/bin/rvclab demo --out out

lab: setup
	$(VENV)/bin/rvclab lab

weights: setup
	$(VENV)/bin/rvclab weights make

bench: setup
	$(VENV)/bin/rvclab bench --stage all --seconds 1,5,15 --json out/bench_stages_cpu.json

lint: setup
	$(VENV)/bin/ruff check rvclab tests scripts notebooks

# Each notebooks/NN_name.ipynb is paired with NN_name.py (notebooks/jupytext.toml). After editing either,
# `make notebooks-sync` updates the other from the newer one (the .ipynb keeps its outputs and cell ids);
# a new NN_name.py without its .ipynb gets one.
notebooks-sync: setup
	$(VENV)/bin/jupytext --sync $(NOTEBOOKS) $(filter-out $(NOTEBOOKS:.ipynb=.py),$(wildcard notebooks/*.py))
	$(PY) scripts/stamp_notebooks.py $(wildcard notebooks/*.ipynb)

# Execute and store outputs: `make notebooks-run NB=notebooks/05_voice_conversion.ipynb` (all without NB).
# The one writer of the stored outputs nbval compares against (`rvclab lab` refuses to save over them).
notebooks-run: notebooks-sync
	$(PY) scripts/run_notebooks.py --timeout 1200 $(or $(NB),$(NOTEBOOKS))
	$(PY) scripts/stamp_notebooks.py $(or $(NB),$(NOTEBOOKS))

clean:
	rm -rf $(VENV) out build *.egg-info
