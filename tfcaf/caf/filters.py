"""Constraints c(f) that turn a free filter parameter into an attention filter.

Each filter kind maps per-image parameters to an (B, h, w) filter that is
broadcast over the C channels of the feature map A (docs/method.md §1), and
to the (B, h, w) heatmap reported to the user.
"""

import tensorflow as tf

from tfcaf.errors import TfcafError


def initial_parameters(name, batch, height, width, init, seed, restarts=1):
    """Initial filter parameters for `batch` independent problems.

    Args:
        name: filter kind, one of `FILTERS`.
        batch, height, width: problem count and feature-map size (h, w).
        init: "normal" (N(0, 1), seeded; the authors' TF code) or "ones"
            (the authors' PyTorch code).
        seed: integer seed of the "normal" draw. Every problem starts from
            the same draw, so a result does not depend on the batch it is
            solved in.
        restarts: k draws, seeds [seed, 0] .. [seed, k - 1]; row b takes
            draw b mod k (the rows of one problem's k starts are adjacent).

    Returns:
        float32 tensor: (B, h, w) for l2norm/softmax; (B, 2) for gauss, the
        Gaussian mean (row, col) in grid units, starting at the grid centre
        (plus N(0, 1) noise for init="normal").
    """
    shape = (2,) if name == "gauss" else (height, width)
    if init == "ones":
        params = tf.ones((batch,) + shape)
    elif init == "normal":
        draws = tf.stack([tf.random.stateless_normal(shape, seed=[seed, r])
                          for r in range(restarts)])
        params = tf.tile(draws, [batch // restarts] + [1] * len(shape))
    else:
        raise TfcafError(f"unknown init '{init}'; use 'normal' or 'ones'")
    if name == "gauss":
        centre = tf.constant([(height - 1) / 2.0, (width - 1) / 2.0])
        params = centre + (params - 1.0 if init == "ones" else params)
    return params


def constrain(name, params, height, width):
    """c(f): (B, h, w) attention filter from the parameters."""
    if name == "l2norm":
        norm = tf.sqrt(tf.reduce_sum(tf.square(params), axis=[1, 2],
                                     keepdims=True))
        return params / norm
    if name == "softmax":
        flat = tf.reshape(params, (-1, height * width))
        return tf.reshape(tf.nn.softmax(flat, axis=-1), (-1, height, width))
    return _gaussian(params, height, width)


def _gaussian(mean, height, width):
    """Isotropic unit-variance Gaussian on the grid, normalised to sum 1."""
    rows = tf.range(height, dtype=tf.float32)[None, :, None]
    cols = tf.range(width, dtype=tf.float32)[None, None, :]
    sq_dist = (tf.square(rows - mean[:, 0, None, None]) +
               tf.square(cols - mean[:, 1, None, None]))
    logits = tf.reshape(-0.5 * sq_dist, (-1, height * width))
    return tf.reshape(tf.nn.softmax(logits, axis=-1), (-1, height, width))


def heatmap(name, params, height, width):
    """The (B, h, w) map shown to users: |f| / ‖f‖₂ for l2norm, c(f) else."""
    filt = constrain(name, params, height, width)
    return tf.abs(filt) if name == "l2norm" else filt
