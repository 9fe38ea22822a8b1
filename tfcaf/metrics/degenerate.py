"""Degenerate maps: raw maps that show nothing (constant, all zeros, or with
NaN/inf). Their heatmap is all zeros, they give no box and miss the pointing
game; bin/evaluate counts them per method and bin/visualize warns about them."""

import numpy as np

from tfcaf.caf.heatmaps import RELATIVE_RANGE


def degenerate_maps(maps):
    """Which raw maps are degenerate.

    A map is degenerate when it holds a non-finite value, or when
    max − min ≤ `RELATIVE_RANGE` · max(1, |max|) (constant, e.g. all zeros: Grad-CAM
    where every weighted feature is negative, CAM on zero feature maps).

    Args:
        maps: (..., h, w) raw maps (any leading shape, e.g. (B,) or (B, T)).

    Returns:
        (...) bool array, True for degenerate maps.
    """
    maps = np.asarray(maps, np.float64)
    flat = maps.reshape(maps.shape[:-2] + (-1,))
    finite = np.isfinite(flat).all(axis=-1)
    with np.errstate(invalid="ignore"):
        high, low = flat.max(axis=-1), flat.min(axis=-1)
        flat_range = (high - low) <= RELATIVE_RANGE * np.maximum(1.0, np.abs(high))
    return ~finite | flat_range


def degenerate_warning(method, count, total):
    """The one line that reports `count` degenerate maps of `total`."""
    return (f"{method}: {count} of {total} maps are constant or non-finite (degenerate): "
            "their heatmaps are all zeros")
