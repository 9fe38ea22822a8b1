#!/usr/bin/env bash
# Regenerates tests/data/golden/xplique_metrics.npz: xplique 2.0.2's
# Deletion, Insertion, AverageDropMetric, AverageIncreaseMetric and
# MuFidelity on tools/golden_net.py, plus pytorch-grad-cam 1.5.7's own
# DropInConfidence / IncreaseInConfidence on tools/golden_torch_net.py.
#
# Same side virtualenv as tools/make_xplique_golden.sh (.venv-xplique,
# ignored by git; its install recipe is reused from there: TensorFlow's CPU
# wheel at the project's version, xplique 2.0.2 --no-deps plus what it
# imports). The default test suite never runs this;
# tests/test_xplique_metrics_golden.py only reads the committed file.
#
# pytorch-grad-cam needs torch: a throwaway venv VENV_GRADCAM (default
# .venv-gradcam-metrics, ignored by git) with the CPU wheel of torch 2.13 and
# grad-cam 1.5.7 --no-deps (its torchvision import is stood in for, as in
# tools/make_torch_golden.sh); VENV_GRADCAM=.venv-torch reuses that one.
#
# Usage: tools/make_xplique_metrics_golden.sh [--install-only]
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-xplique
PYTHON_SIDE=${PYTHON_SIDE:-$(command -v python3.11 || echo /root/.pyenv/versions/3.11.7/bin/python3)}
STAMP=$VENV/.installed-tfcpu2.21.0-xplique2.0.2-tfkv0.8.7
TF_VERSION=$(sed -n 's/^tensorflow==//p' constraints.txt)

if [ ! -f "$STAMP" ]; then
    # The recipe of tools/make_xplique_golden.sh (see the comments there).
    test -x "$VENV/bin/python" || "$PYTHON_SIDE" -m venv "$VENV"
    PIP=("$VENV/bin/python" -m pip install --quiet -c constraints.txt)
    "${PIP[@]}" "tensorflow-cpu==$TF_VERSION" keras numpy scipy scikit-learn \
        opencv-python-headless pillow packaging
    "${PIP[@]}" 'tensorflow-probability==0.25.0' dm-tree decorator
    "${PIP[@]}" --no-deps "tf-keras==$TF_VERSION"
    "${PIP[@]}" --no-deps 'xplique==2.0.2'
    "${PIP[@]}" einops matplotlib deprecated 'scikit-image<=0.25.2'
    "${PIP[@]}" 'tf-keras-vis==0.8.7' imageio
    touch "$STAMP"
fi

VENV_GRADCAM=${VENV_GRADCAM:-.venv-gradcam-metrics}
if ! "$VENV_GRADCAM/bin/python" -c "import torch, pytorch_grad_cam.metrics, cv2, ttach" \
        2>/dev/null; then
    test -x "$VENV_GRADCAM/bin/python" || "$PYTHON_SIDE" -m venv "$VENV_GRADCAM"
    "$VENV_GRADCAM/bin/python" -m pip install --quiet 'torch==2.13.0' 'numpy==2.4.6'
    "$VENV_GRADCAM/bin/python" -m pip install --quiet --no-deps 'grad-cam==1.5.7'
    "$VENV_GRADCAM/bin/python" -m pip install --quiet 'ttach==0.0.3' tqdm \
        'opencv-python-headless==5.0.0.93' 'scikit-learn==1.9.1' 'scipy==1.17.1' \
        matplotlib Pillow
fi
[ "${1:-}" = --install-only ] && exit 0

export TF_CPP_MIN_LOG_LEVEL=2 CUDA_VISIBLE_DEVICES=""
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$VENV_GRADCAM/bin/python" tools/make_xplique_metrics_golden.py --part gradcam \
    --out "$TMP/gradcam.npz"
"$VENV/bin/python" tools/make_xplique_metrics_golden.py --part xplique \
    --gradcam-npz "$TMP/gradcam.npz"
