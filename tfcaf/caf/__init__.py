"""The L2-CAF engine: model splitting, the batched solver, and the method
registry (L2-CAF, CAM, Grad-CAM, Grad-CAM++).

Each public name is imported on first use (PEP 562 module `__getattr__`):
the binaries read `METHODS` to check flags and list `--help` choices, and
`tfcaf.caf.methods` loads no TensorFlow, so they can do it before
TensorFlow is imported.
"""

import importlib

# Public name -> the submodule that defines it.
_SOURCES = {
    "Explainer": "explainer", "Explanation": "explainer", "explain": "explainer",
    "METHODS": "methods", "Method": "methods", "method": "methods",
    "Solution": "solver", "SolverConfig": "solver",
    "SplitModel": "split", "split_model": "split",
}

__all__ = ["METHODS", "Explainer", "Explanation", "Method", "Solution", "SolverConfig",
           "SplitModel", "explain", "method", "split_model"]


def __getattr__(name):
    if name not in _SOURCES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_SOURCES[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *__all__})
