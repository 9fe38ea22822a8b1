"""tfcaf: L2-CAF visualization (Taha et al., ECCV 2020) for TensorFlow/Keras.

`tfcaf.explain(model, images, method="l2caf")` returns heatmaps of where a
classification or retrieval CNN looks; `tfcaf.applications.load_model(path)`
loads a saved tfcaf model (or a `keras.applications` classifier by name).
Subpackages: `caf` (the engine), `applications`, `models`, `losses`, `data`,
`training`, `metrics`, `evaluation`, `export`, `cli`.

`import tfcaf` imports no TensorFlow: each subpackage is imported on first
use of `tfcaf.<name>` (PEP 562 module `__getattr__`).
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = ("applications", "caf", "cli", "data", "evaluation", "export", "losses",
               "metrics", "models", "training")


def explain(*args, **kwargs):
    """See `tfcaf.caf.explain`; imported lazily to keep `import tfcaf` light."""
    from tfcaf.caf import explain as _explain
    return _explain(*args, **kwargs)


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_SUBMODULES])
