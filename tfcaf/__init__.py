"""tfcaf: L2-CAF visualization (Taha et al., ECCV 2020) for TensorFlow/Keras.

`tfcaf.explain(model, images, method="l2caf")` returns heatmaps of where a
classification or retrieval CNN looks. Subpackages: `caf` (the engine),
`models`, `losses`, `data`, `metrics`, `export`, `cli`.
"""

__version__ = "0.1.0"


def explain(*args, **kwargs):
    """See `tfcaf.caf.explain`; imported lazily to keep `import tfcaf` light."""
    from tfcaf.caf import explain as _explain
    return _explain(*args, **kwargs)
