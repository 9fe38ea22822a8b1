"""tfcaf: L2-CAF visualization (Taha et al., ECCV 2020) for TensorFlow/Keras.

`tfcaf.explain(model, images, method="l2caf")` returns heatmaps of where a
classification or retrieval CNN looks; `tfcaf.applications.load_model(path)`
loads a saved tfcaf model (or a `keras.applications` classifier by name).
Subpackages: `caf` (the engine), `applications`, `models`, `losses`, `data`,
`training`, `metrics`, `evaluation`, `export`, `cli`.

`import tfcaf` imports no TensorFlow: `explain` and each subpackage are
imported on first use of `tfcaf.<name>` (`tfcaf.lazy`).
"""

from tfcaf import lazy

__version__ = "0.3.0"

_SUBPACKAGES = ("applications", "caf", "cli", "data", "evaluation", "export", "losses",
                "metrics", "models", "training")

__getattr__, __dir__ = lazy.attach(__name__, {"explain": "caf"}, submodules=_SUBPACKAGES)
