# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test demo demo-smoke bench tfa-golden golden-torch golden-tf clean

$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) -m pytest -q --durations=15

demo: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) -m tfcaf.cli.demo $(DEMO_FLAGS)

demo-smoke: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) -m tfcaf.cli.demo --smoke --out_dir=demo_out/smoke

bench: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) bench/caf_speed.py

# Every method beside tf-keras-vis and xplique (bench/methods_speed.py), in the
# side venv of tools/make_xplique_golden.sh where it exists, else in .venv
# (peers skipped). BENCH_FLAGS=--quick: about 3 minutes.
bench-methods: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $$(test -x .venv-xplique/bin/python && echo .venv-xplique/bin/python \
		|| echo $(PY)) bench/methods_speed.py $(BENCH_FLAGS)

# Golden outputs of tensorflow-addons 0.23 (side virtualenv with TF 2.15).
tfa-golden:
	bash tools/make_tfa_golden.sh

# Golden outputs of the attribution libraries (side virtualenvs): PyTorch
# references (pytorch-grad-cam, captum, eclique/RISE: RISE_GIT_DIR=a clone),
# and the TensorFlow ones (xplique, tf-keras-vis).
golden-torch:
	bash tools/make_torch_golden.sh

golden-tf:
	bash tools/make_xplique_golden.sh all

clean:
	rm -rf $(VENV) demo_out *.egg-info
