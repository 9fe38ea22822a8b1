"""Non-finite values never become a plausible map.

A NaN weight, NaN pixels or pixels far outside the model's range (1e28)
make the features, the outputs or L2-CAF's objective NaN or infinite; the
solver then stops at once and its *initial* random filter would come back
looking like any other heatmap. Eager callers (the library, the binaries)
get a `NonFiniteError` instead; the SavedModel's graph cannot raise per
image, so it returns NaN maps with a per-image `status` (`problem_status`).
"""

import numpy as np
import tensorflow as tf

from tfcaf.errors import TfcafError

OK = "ok"
NON_FINITE_IMAGE = "non-finite image"
NON_FINITE_OUTPUT = "non-finite model output"
NON_FINITE_OBJECTIVE = "non-finite objective"


class NonFiniteError(TfcafError):
    """The model or L2-CAF's objective gave NaN or infinite values."""


def finite_rows(tensor):
    """(B,) bool: whether row b of the (B, ...) `tensor` is all finite."""
    tensor = tf.convert_to_tensor(tensor)
    finite = tf.math.is_finite(tf.cast(tensor, tf.float32))
    return tf.reduce_all(tf.reshape(finite, (tf.shape(tensor)[0], -1)), axis=-1)


def _largest(tensor):
    values = np.abs(np.asarray(tensor, np.float64))
    values = values[np.isfinite(values)]
    return f"{values.max():.3g}" if values.size else "none finite"


def require_finite_forward(images, feature_maps, outputs, layer):
    """`NonFiniteError` unless every image's features (B, h, w, C) at
    `layer` and head outputs (B, K) are finite; says where it broke."""
    features_ok = finite_rows(feature_maps).numpy()
    outputs_ok = finite_rows(outputs).numpy()
    if features_ok.all() and outputs_ok.all():
        return
    bad = np.flatnonzero(~(features_ok & outputs_ok)).tolist()
    where = (f"already in the features at layer '{layer}'" if not features_ok.all()
             else f"in the head after layer '{layer}'")
    raise NonFiniteError(
        f"the model's outputs are NaN or infinite for image(s) {bad} of the batch ({where}): "
        f"check the model's weights for NaN and the pixel range (largest |pixel| "
        f"{_largest(images)})")


def require_finite_solution(feature_maps, solution, layer):
    """`NonFiniteError` unless every problem's last loss (P,) and map
    (P, h, w) of the `solver.Solution` are finite."""
    ok = (finite_rows(solution.losses[:, None]) & finite_rows(solution.maps)).numpy()
    if ok.all():
        return
    raise NonFiniteError(
        f"L2-CAF's objective is NaN or infinite for problem(s) {np.flatnonzero(~ok).tolist()} "
        f"(largest |feature| at layer '{layer}': {_largest(feature_maps)}; its square "
        "may overflow float32): are the pixels in the range the model expects?")


def problem_status(images, feature_maps, outputs, losses, maps):
    """(P,) string status of each problem, graph-safe: `OK`, or the first of
    `NON_FINITE_IMAGE`, `NON_FINITE_OUTPUT`, `NON_FINITE_OBJECTIVE` that
    applies. All arguments have P rows (images repeated per target)."""
    image_ok = finite_rows(images)
    output_ok = finite_rows(feature_maps) & finite_rows(outputs)
    objective_ok = finite_rows(losses[:, None]) & finite_rows(maps)
    return tf.where(~image_ok, NON_FINITE_IMAGE,
                    tf.where(~output_ok, NON_FINITE_OUTPUT,
                             tf.where(~objective_ok, NON_FINITE_OBJECTIVE, OK)))
