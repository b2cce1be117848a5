# `make demo`: install, then train pix2pix on the built-in scenes and run the seed's 2x2
# virtual / real-like experiment (quick preset; SEEDS="0 1 2" for the full protocol; finished arms
# are reused, so an interrupted demo resumes), then write the page runs/demo/index.html.
# `make test`: install, then run the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tfgan3d-installed
SEEDS ?= 0

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

demo: setup
	$(PY) -m tfgan3d.eval domains --preset quick --out runs/pix2pix-domains --seeds $(SEEDS) --reuse
	$(PY) -m tfgan3d.eval report runs/pix2pix-domains --out runs/demo

test: setup
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) -m pytest -q tests

bench: setup
	$(PY) -m tfgan3d.tools.bench pix2pix

clean:
	rm -rf $(VENV) runs
