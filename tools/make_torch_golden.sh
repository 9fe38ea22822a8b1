#!/usr/bin/env bash
# Regenerates tests/data/golden/{pytorch_grad_cam,captum,rise}.npz from the
# PyTorch reference libraries (tools/make_torch_golden.py says how).
#
# They need PyTorch, which the project does not: the side virtualenv
# .venv-torch (tools/side_venvs.sh says what it holds and why).
# eclique/RISE is not on PyPI: pass the git directory of a clone of
# github.com/eclique/RISE as RISE_GIT_DIR (its code is read at run time only,
# never committed). The default test suite never runs this; it only reads
# the committed files.
set -euo pipefail
cd "$(dirname "$0")/.."

source tools/side_venvs.sh

VENV=${VENV_TORCH:-.venv-torch}
torch_venv "$VENV"

ARGS=()
if [ -n "${RISE_GIT_DIR:-}" ]; then
    ARGS+=(--rise-git-dir "$RISE_GIT_DIR")
fi
"$VENV/bin/python" tools/make_torch_golden.py ${ARGS[@]+"${ARGS[@]}"} "$@"
