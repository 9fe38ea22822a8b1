#!/usr/bin/env bash
# Regenerates tests/data/golden/{pytorch_grad_cam,captum,rise}.npz from the
# PyTorch reference libraries (tools/make_torch_golden.py says how).
#
# They need PyTorch, which the project does not: a side virtualenv
# (.venv-torch, ignored by git) with the CPU wheel of torch 2.13 (the local
# file pip takes for exactly this version; a plain `torch` would pull a CUDA
# build) and pinned reference releases. grad-cam is installed --no-deps
# because it requires torchvision, which does not import beside that wheel;
# the script stands in for the torchvision imports grad-cam never uses here.
# eclique/RISE is not on PyPI: pass the git directory of a clone of
# github.com/eclique/RISE as RISE_GIT_DIR (its code is read at run time only,
# never committed). The default test suite never runs this; it only reads
# the committed files.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV_TORCH:-.venv-torch}
PYTHON_TORCH=${PYTHON_TORCH:-$(command -v python3.11 || echo /root/.pyenv/versions/3.11.7/bin/python3)}
STAMP=$VENV/.installed-torch2.13.0-gradcam1.5.7-captum0.9.0

if [ ! -f "$STAMP" ]; then
    test -x "$VENV/bin/python" || "$PYTHON_TORCH" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet 'torch==2.13.0' 'numpy==2.4.6'
    "$VENV/bin/python" -m pip install --quiet --no-deps 'grad-cam==1.5.7'
    # grad-cam's other requirements, captum, and RISE's (scikit-image, scipy).
    "$VENV/bin/python" -m pip install --quiet 'ttach==0.0.3' 'tqdm' \
        'opencv-python-headless==5.0.0.93' 'scikit-learn==1.9.1' 'scipy==1.17.1' \
        'matplotlib' 'Pillow' 'captum==0.9.0' 'scikit-image==0.26.0'
    touch "$STAMP"
fi

ARGS=()
if [ -n "${RISE_GIT_DIR:-}" ]; then
    ARGS+=(--rise-git-dir "$RISE_GIT_DIR")
fi
"$VENV/bin/python" tools/make_torch_golden.py ${ARGS[@]+"${ARGS[@]}"} "$@"
