# dclab: `make demo` serves the dashboards, `make test` runs the whole test suite.
# Both create .venv and install everything on first use.
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
# PyTorch pinned where we install it (pyproject.toml admits a range); override with TORCH="..."
TORCH  ?= torch==2.14.1 torchvision==0.29.1
HOST   ?= 127.0.0.1
PORT   ?= 8866
PYTEST_ARGS ?=
STAMP  := $(VENV)/.dclab-installed

.PHONY: setup prepare demo test lab benchmarks strip-notebooks

$(STAMP): pyproject.toml $(wildcard share/jupyter/voila/templates/dclab/*)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[test]"
	@touch $@

setup: $(STAMP)

prepare: setup
	$(PY) -m dclab prepare

demo: prepare
	$(PY) -m dclab serve --host=$(HOST) --port=$(PORT)

test: prepare
	$(PY) -m pytest $(PYTEST_ARGS)

lab: prepare
	JUPYTER_PATH=$(CURDIR)/share/jupyter $(VENV)/bin/jupyter lab --ip=$(HOST) --port=8888 notebooks

benchmarks: prepare
	$(PY) benchmarks/run_all.py

strip-notebooks: setup
	$(PY) tools/strip_notebooks.py notebooks/*.ipynb
