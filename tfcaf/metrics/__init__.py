"""Evaluation metrics: `tfcaf.metrics.<name>` is the library function of the
registered metric `<name>` (`tfcaf.metrics.registry.METRICS`, the names of
`bin/evaluate --metric`), on plain arrays, e.g.
`tfcaf.metrics.pxap(heatmaps (N, H, W) in [0, 1], masks (N, H, W)) -> float`.

Names are imported on first use, so importing the package loads no
TensorFlow (the binaries read the registry before it loads).
"""

from tfcaf.metrics import registry

_ALIASES = {"normalized_mutual_information": "tfcaf.metrics.retrieval",
            "recall_at_k": "tfcaf.metrics.retrieval"}


def __getattr__(name):
    import importlib
    if name in registry.METRICS:
        value = registry.load(registry.METRICS[name].function)
    elif name in _ALIASES:
        value = getattr(importlib.import_module(_ALIASES[name]), name)
    else:
        raise AttributeError(f"module 'tfcaf.metrics' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(registry.METRICS) | set(_ALIASES))
