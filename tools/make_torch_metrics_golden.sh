#!/usr/bin/env bash
# Regenerates tests/data/golden/torch_metrics.npz (pytorch-grad-cam 1.5.7's
# ROAD and confidence metrics, TorchRay's pointing game) from the reference
# libraries: tools/make_torch_metrics_golden.py says how.
#
# The side virtualenv is the one of tools/make_torch_golden.sh (.venv-torch,
# ignored by git: the CPU wheel of torch 2.13, grad-cam 1.5.7 --no-deps and
# its pinned requirements); this script installs what is missing with the
# same pins, under its own stamp. TorchRay 1.0.0.2 (PyPI, sdist only) is not
# installed: its requirements (torchvision, pycocotools, pymongo) do not
# matter to PointingGame, and torchvision does not import beside that torch
# wheel. `pip download` fetches the sdist into the venv; the Python script
# reads torchray/benchmark/pointing_game.py from it. The default test suite
# never runs this; it only reads the committed file.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV_TORCH:-.venv-torch}
PYTHON_TORCH=${PYTHON_TORCH:-$(command -v python3.11 || echo /root/.pyenv/versions/3.11.7/bin/python3)}
STAMP=$VENV/.installed-metrics-torch2.13.0-gradcam1.5.7-torchray1.0.0.2
SDIST_DIR=$VENV/sdists
SDIST=$SDIST_DIR/torchray-1.0.0.2.tar.gz

if [ ! -f "$STAMP" ]; then
    test -x "$VENV/bin/python" || "$PYTHON_TORCH" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet 'torch==2.13.0' 'numpy==2.4.6'
    "$VENV/bin/python" -m pip install --quiet --no-deps 'grad-cam==1.5.7'
    "$VENV/bin/python" -m pip install --quiet 'ttach==0.0.3' 'tqdm' \
        'opencv-python-headless==5.0.0.93' 'scikit-learn==1.9.1' 'scipy==1.17.1' \
        'matplotlib' 'Pillow'
    "$VENV/bin/python" -m pip download --quiet --no-deps \
        'torchray==1.0.0.2' -d "$SDIST_DIR"
    touch "$STAMP"
fi

"$VENV/bin/python" tools/make_torch_metrics_golden.py --torchray-sdist "$SDIST" "$@"
