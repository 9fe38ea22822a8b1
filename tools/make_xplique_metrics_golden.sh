#!/usr/bin/env bash
# Regenerates tests/data/golden/xplique_metrics.npz: xplique 2.0.2's
# Deletion, Insertion, AverageDropMetric, AverageIncreaseMetric and
# MuFidelity on tools/golden_net.py, plus pytorch-grad-cam 1.5.7's own
# DropInConfidence / IncreaseInConfidence on tools/golden_torch_net.py.
#
# Side virtualenvs (tools/side_venvs.sh): .venv-xplique for xplique, and
# .venv-torch (VENV_GRADCAM) for pytorch-grad-cam. The default test suite
# never runs this; tests/test_xplique_metrics_golden.py only reads the
# committed file.
#
# Usage: tools/make_xplique_metrics_golden.sh [--install-only]
set -euo pipefail
cd "$(dirname "$0")/.."

source tools/side_venvs.sh

VENV=.venv-xplique
VENV_GRADCAM=${VENV_GRADCAM:-.venv-torch}
xplique_venv "$VENV"
torch_venv "$VENV_GRADCAM"
[ "${1:-}" = --install-only ] && exit 0

export TF_CPP_MIN_LOG_LEVEL=2 CUDA_VISIBLE_DEVICES=""
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$VENV_GRADCAM/bin/python" tools/make_xplique_metrics_golden.py --part gradcam \
    --out "$TMP/gradcam.npz"
"$VENV/bin/python" tools/make_xplique_metrics_golden.py --part xplique \
    --gradcam-npz "$TMP/gradcam.npz"
