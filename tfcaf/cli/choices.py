"""Names the binaries' flags accept, checked when flags are parsed.

The registries these mirror (`tfcaf.caf.METHODS`, `tfcaf.caf.filters.FILTERS`,
`tfcaf.evaluation.METRICS`, `BOX_PROTOCOLS`) live in packages that load
TensorFlow, which takes seconds; copying the names here lets a typo fail
at once and `--help` list them without loading it.
tests/test_cli_help.py fails when a copy and its registry differ.
"""

METHODS = ("l2caf", "l2caf_specific", "cam", "gradcam", "gradcampp")
FILTERS = ("l2norm", "softmax", "gauss")
METRICS = ("iou", "maxboxacc", "recall", "nmi", "sanity", "deletion", "insertion",
           "average_drop", "pointing_game")
BOX_PROTOCOLS = ("wsolevaluation", "tfcaf")
DATASETS = ("digits", "cub", "imagenet", "folder")


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
