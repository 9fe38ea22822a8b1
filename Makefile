# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test demo bench clean

$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) -m pytest -q

demo: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) -m tfcaf.cli.demo

bench: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) bench/caf_speed.py

clean:
	rm -rf $(VENV) demo_out *.egg-info
