#!/usr/bin/env bash
# Regenerates tests/data/golden/xplique.npz (xplique 2.0.2) and
# tests/data/golden/tf_keras_vis.npz (tf-keras-vis 0.8.7).
#
# Both libraries run on the project's TensorFlow 2.21 / Keras 3.15, but
# xplique's metadata pins tensorflow[and-cuda]<=2.20 (a CUDA download), so
# they get a side virtualenv (.venv-xplique, ignored by git): TensorFlow's
# CPU wheel at the project's versions (constraints.txt), xplique installed
# with --no-deps plus what it imports. The default test suite never runs
# this; tests/test_golden_tf.py only reads the committed files.
#
# Usage: tools/make_xplique_golden.sh [xplique|tf_keras_vis|all]
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-xplique
PYTHON_SIDE=${PYTHON_SIDE:-$(command -v python3.11 || echo /root/.pyenv/versions/3.11.7/bin/python3)}
STAMP=$VENV/.installed-tfcpu2.21.0-xplique2.0.2-tfkv0.8.7
# tensorflow-cpu is not in constraints.txt (the project has `tensorflow`);
# pin it to the same version by hand.
TF_VERSION=$(sed -n 's/^tensorflow==//p' constraints.txt)

if [ ! -f "$STAMP" ]; then
    test -x "$VENV/bin/python" || "$PYTHON_SIDE" -m venv "$VENV"
    PIP=("$VENV/bin/python" -m pip install --quiet -c constraints.txt)
    "${PIP[@]}" "tensorflow-cpu==$TF_VERSION" keras numpy scipy scikit-learn \
        opencv-python-headless pillow packaging
    # tfp 0.25 is the newest release; with Keras 3 it imports tf-keras (the
    # Keras 2 API) at TensorFlow's version. tf-keras asks for the `tensorflow`
    # distribution, which the CPU wheel already provides under another name:
    # --no-deps. The networks themselves are Keras 3, as in the project.
    "${PIP[@]}" 'tensorflow-probability==0.25.0' dm-tree decorator
    "${PIP[@]}" --no-deps "tf-keras==$TF_VERSION"
    # xplique's own pins (tensorflow[and-cuda]<=2.20, scikit-learn<=1.7.2,
    # scipy<=1.15.3, opencv-python, ruff) are not what it needs to run here:
    # --no-deps, then the modules it imports.
    "${PIP[@]}" --no-deps 'xplique==2.0.2'
    "${PIP[@]}" einops matplotlib deprecated 'scikit-image<=0.25.2'
    "${PIP[@]}" 'tf-keras-vis==0.8.7' imageio
    touch "$STAMP"
fi

WHICH=${1:-all}
export TF_CPP_MIN_LOG_LEVEL=2 CUDA_VISIBLE_DEVICES=""
if [ "$WHICH" = xplique ] || [ "$WHICH" = all ]; then
    "$VENV/bin/python" tools/make_xplique_golden.py
fi
if [ "$WHICH" = tf_keras_vis ] || [ "$WHICH" = all ]; then
    "$VENV/bin/python" tools/make_tf_keras_vis_golden.py
fi
