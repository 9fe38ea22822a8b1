"""The L2-CAF engine: model splitting, the batched solver, and the method
registry (L2-CAF, CAM, Grad-CAM, Grad-CAM++).

Each public name is imported on first use (PEP 562 module `__getattr__`):
the binaries read `METHODS` to check flags and list `--help` choices, and
`tfcaf.caf.methods` loads no TensorFlow, so they can do it before
TensorFlow is imported.
"""

from tfcaf import lazy

# Public name -> the submodule that defines it.
_SOURCES = {
    "Explainer": "explainer", "Explanation": "explanation", "explain": "explainer",
    "METHODS": "methods", "Method": "methods", "method": "methods",
    "Solution": "solver", "SolverConfig": "solver_config",
    "SplitModel": "split", "split_model": "split", "Similarity": "targets",
}

__all__ = sorted(_SOURCES)

__getattr__, __dir__ = lazy.attach(__name__, _SOURCES)
