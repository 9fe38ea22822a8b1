#!/usr/bin/env bash
# Regenerates tests/data/golden/quantus.npz from Quantus itself
# (tools/make_quantus_golden.py says what it holds and how).
#
# Quantus's TensorFlow path needs TF < 2.16 (the project has 2.21), so it
# runs on its PyTorch path in a side virtualenv (.venv-quantus, ignored by
# git): the CPU wheel of torch 2.13 (the local file pip takes for exactly
# this version; a plain `torch` would pull a CUDA build) and Quantus 0.6.0,
# the newest release, installed --no-deps: it requires opencv-python (the
# GUI build), which the headless build replaces, and it imports torchvision
# nowhere on this path. The default test suite never runs this; it only
# reads the committed file.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV_QUANTUS:-.venv-quantus}
PYTHON_QUANTUS=${PYTHON_QUANTUS:-$(command -v python3.11 || echo /root/.pyenv/versions/3.11.7/bin/python3)}
STAMP=$VENV/.installed-torch2.13.0-quantus0.6.0

if [ ! -f "$STAMP" ]; then
    test -x "$VENV/bin/python" || "$PYTHON_QUANTUS" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet 'torch==2.13.0' 'numpy==2.4.6'
    "$VENV/bin/python" -m pip install --quiet --no-deps 'quantus==0.6.0'
    # Quantus's other requirements (opencv as its headless build).
    "$VENV/bin/python" -m pip install --quiet 'scipy==1.17.1' 'scikit-learn==1.9.1' \
        'scikit-image==0.26.0' 'pandas==3.1.1' 'tqdm==4.70.1' 'matplotlib==3.11.2' \
        'cachetools==8.0.2' 'opencv-python-headless==5.0.0.93'
    touch "$STAMP"
fi

"$VENV/bin/python" tools/make_quantus_golden.py "$@"
