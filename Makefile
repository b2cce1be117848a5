# `make demo`: install, then run each seed system's experiment at the quick preset on the built-in
# data (tools/demo.py: pix2pix's 2x2, simgan's gaze finding, sim2real's comparison table,
# fcr_alphagan's findings, renders, interpolation GIF and noise heat map), then write the page
# runs/demo/index.html. SEEDS="0 1 2" runs the full protocol, MODES=simgan one system; finished
# stages are reused, so an interrupted demo resumes.
# `make test`: install (with the optional Ray extra, whose launcher has a test), then run the
# tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tfgan3d-installed
RAY_STAMP := $(VENV)/.tfgan3d-ray-installed
SEEDS ?= 0
MODES ?= pix2pix simgan sim2real fcr_alphagan

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt requirements-serving.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -r requirements-serving.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

# The Ray launcher's extra (requirements-ray.txt): the tests install it, a plain setup does not.
$(RAY_STAMP): $(STAMP) requirements-ray.txt
	$(PY) -m pip install -q -r requirements-ray.txt
	touch $(RAY_STAMP)

demo: setup
	$(PY) -m tfgan3d.tools.demo --out runs/demo --modes $(MODES) --seeds $(SEEDS) --preset quick

test: setup $(RAY_STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) -m pytest -q -n 2 --dist loadfile --durations=25 tests

bench: setup
	$(PY) -m tfgan3d.tools.bench pix2pix

clean:
	rm -rf $(VENV) runs
