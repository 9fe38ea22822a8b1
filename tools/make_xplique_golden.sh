#!/usr/bin/env bash
# Regenerates tests/data/golden/xplique.npz (xplique 2.0.2) and
# tests/data/golden/tf_keras_vis.npz (tf-keras-vis 0.8.7) in the side
# virtualenv .venv-xplique (tools/side_venvs.sh says what it holds and why).
# The default test suite never runs this; tests/test_golden_tf.py only reads
# the committed files.
#
# Usage: tools/make_xplique_golden.sh [xplique|tf_keras_vis|all]
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/side_venvs.sh

VENV=.venv-xplique
xplique_venv "$VENV"

WHICH=${1:-all}
export TF_CPP_MIN_LOG_LEVEL=2 CUDA_VISIBLE_DEVICES=""
if [ "$WHICH" = xplique ] || [ "$WHICH" = all ]; then
    "$VENV/bin/python" tools/make_xplique_golden.py
fi
if [ "$WHICH" = tf_keras_vis ] || [ "$WHICH" = all ]; then
    "$VENV/bin/python" tools/make_tf_keras_vis_golden.py
fi
