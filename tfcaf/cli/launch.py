"""Starts a `bin/` binary: moves into the project's `.venv` when run with
another interpreter, then hands the command line to the module's absl main.

Only the standard library is imported before the switch, so `bin/X` works
from a fresh shell right after `make test` or `make demo`.
"""

import importlib
import os
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _venv_python():
    path = os.path.join(_REPO, ".venv", "bin", "python")
    return path if os.path.exists(path) else None


def run(name):
    """Runs `tfcaf.cli.<name>.main` under absl, inside `.venv` if present."""
    venv = _venv_python()
    in_venv = os.path.realpath(sys.prefix) == os.path.realpath(os.path.join(_REPO, ".venv"))
    if venv and not in_venv and not os.environ.get("TFCAF_NO_VENV_SWITCH"):
        os.execv(venv, [venv] + sys.argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from absl import app
    module = importlib.import_module(f"tfcaf.cli.{name}")
    app.run(module.main)
