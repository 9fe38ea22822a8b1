"""Argument checks shared by the metric functions: each raises one
`TfcafError` line that names the metric and the argument at fault."""

import numpy as np

from tfcaf.errors import TfcafError


def check_heatmaps(heatmaps, metric, count=None, size=None):
    """(N, H, W) float64 array of `heatmaps`; `TfcafError` naming `metric`
    when it is not 3-D, has no image, or does not match `count` images of
    (H, W) `size`."""
    maps = np.asarray(heatmaps, np.float64)
    if maps.ndim != 3 or not maps.shape[0] or not maps.shape[1] or not maps.shape[2]:
        raise TfcafError(f"{metric}: heatmaps must be (N, H, W) with N, H, W > 0; "
                         f"got shape {maps.shape}")
    if count is not None and (maps.shape[0] != count or maps.shape[1:] != tuple(size)):
        raise TfcafError(f"{metric}: heatmaps {maps.shape} must be ({count}, {size[0]}, "
                         f"{size[1]}), one per image at image size")
    return maps


def check_images(images, metric):
    """(N, H, W, 3) float32 array of `images`; `TfcafError` naming
    `metric` otherwise."""
    array = np.asarray(images)
    if array.ndim != 4 or array.shape[-1] != 3 or not all(array.shape[:3]):
        raise TfcafError(f"{metric}: images must be (N, H, W, 3) with N, H, W > 0; "
                         f"got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number) or not np.isfinite(array).all():
        raise TfcafError(f"{metric}: images must be finite numbers")
    return array.astype(np.float32)


def check_targets(targets, count, metric, classes=None):
    """(count,) int32 class ids; `TfcafError` naming `metric` otherwise."""
    ids = np.asarray(targets)
    if ids.shape != (count,) or not np.issubdtype(ids.dtype, np.integer):
        raise TfcafError(f"{metric}: targets must be {count} integer class ids (one per "
                         f"image); got {ids.dtype} of shape {ids.shape}")
    if classes is not None and ((ids < 0) | (ids >= classes)).any():
        raise TfcafError(f"{metric}: targets must be class ids in [0, {classes}); "
                         f"got {ids.min()}..{ids.max()}")
    return ids.astype(np.int32)


def check_int(value, name, metric, minimum=1):
    """int(value); `TfcafError` naming `metric` and `name` unless an
    integer >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise TfcafError(f"{metric}: {name} must be an integer >= {minimum}; got {value!r}")
    return int(value)
