#!/usr/bin/env bash
# Regenerates tests/data/tfa_golden.npz from tensorflow-addons 0.23.
#
# tensorflow-addons cannot live beside TensorFlow 2.21, so it gets a side
# virtualenv (.venv-tfa, ignored by git) with the last TensorFlow it supports.
# The default test suite never runs this; it only reads the committed file.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-tfa
# TensorFlow 2.15 ships wheels for Python 3.9-3.11 only.
PYTHON_TFA=${PYTHON_TFA:-$(command -v python3.11 || echo /root/.pyenv/versions/3.11.7/bin/python3)}
STAMP=$VENV/.installed-tf2.15.1-tfa0.23.0

if [ ! -f "$STAMP" ]; then
    test -x "$VENV/bin/python" || "$PYTHON_TFA" -m venv "$VENV"
    # The CPU wheel is enough for golden values and avoids the CUDA download.
    "$VENV/bin/python" -m pip install --quiet \
        'tensorflow-cpu==2.15.1' 'tensorflow-addons==0.23.0' 'numpy<2'
    touch "$STAMP"
fi

TF_CPP_MIN_LOG_LEVEL=2 "$VENV/bin/python" tools/make_tfa_golden.py "$@"
