#!/usr/bin/env bash
# Regenerates tests/data/golden/torch_metrics.npz (pytorch-grad-cam 1.5.7's
# ROAD and confidence metrics, TorchRay's pointing game) from the reference
# libraries: tools/make_torch_metrics_golden.py says how.
#
# The side virtualenv is .venv-torch (tools/side_venvs.sh). TorchRay 1.0.0.2 (PyPI, sdist only) is not
# installed: its requirements (torchvision, pycocotools, pymongo) do not
# matter to PointingGame, and torchvision does not import beside that torch
# wheel. `pip download` fetches the sdist into the venv; the Python script
# reads torchray/benchmark/pointing_game.py from it. The default test suite
# never runs this; it only reads the committed file.
set -euo pipefail
cd "$(dirname "$0")/.."

source tools/side_venvs.sh

VENV=${VENV_TORCH:-.venv-torch}
SDIST=$VENV/sdists/torchray-1.0.0.2.tar.gz
torch_venv "$VENV"
if [ ! -f "$SDIST" ]; then
    "$VENV/bin/python" -m pip download --quiet --no-deps 'torchray==1.0.0.2' \
        -d "$(dirname "$SDIST")"
fi

"$VENV/bin/python" tools/make_torch_metrics_golden.py --torchray-sdist "$SDIST" "$@"
