# `make test`, `make demo` and `make demo-parts` work on a fresh clone: each creates .venv when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Two test processes (pytest-xdist): the whole suite in about 10 minutes on 2 cores instead of about 17.
PYTEST_ARGS ?= -n 2

.PHONY: setup test demo demo-parts clean

setup: $(STAMP)

$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

test: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) -m pytest tests $(PYTEST_ARGS)

demo: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) scripts/demo.py

demo-parts: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) scripts/demo.py --task parts

clean:
	rm -rf $(VENV) build *.egg-info
