"""Names the binaries' flags accept, checked when flags are parsed.

They are the registries' own names, imported from modules that load no
TensorFlow (`tfcaf.caf.methods`, `tfcaf.metrics.registry`, `tfcaf.names`),
so a typo fails at once and `--help` lists them before TensorFlow is
imported. Metric names are read when checked (`metric_names`): a metric
registered after this import is accepted too.
"""

from tfcaf.caf.methods import METHODS as _METHOD_REGISTRY
from tfcaf.metrics import registry as _metric_registry
from tfcaf.names import BOX_PROTOCOLS, DATASETS, FILTERS

METHODS = tuple(_METHOD_REGISTRY)
metric_names = _metric_registry.names

__all__ = ["BOX_PROTOCOLS", "DATASETS", "FILTERS", "METHODS", "check_names", "metric_names"]


def check_names(values, valid):
    """Raises absl's `ValidationError` listing `valid` unless every value
    of `values` is one of them (absl's message names the flag)."""
    from absl import flags
    unknown = [v for v in values if v not in valid]
    if unknown:
        raise flags.ValidationError(
            f"unknown {', '.join(repr(v) for v in unknown)}; "
            f"choose from {', '.join(valid)}")
    if not values:
        raise flags.ValidationError(f"empty; choose from {', '.join(valid)}")
    return True
