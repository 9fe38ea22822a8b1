"""Pairwise distance matrices with the numerics of tensorflow-addons 0.23.

Pure TensorFlow (no Keras), so the module also runs on TF 2.15 where the
golden files are produced. The formulas deliberately follow tfa's rather than
the more accurate `|a - b|`: near-duplicate points suffer cancellation in
`|a|² + |b|² - 2 a·b`, and matching tfa to 1e-5 needs the same round-off.
"""

import tensorflow as tf

from tfcaf.losses import _common

DISTANCE_METRICS = ("L2", "squared-L2", "angular")


def _check_embeddings(embeddings):
    embeddings = tf.convert_to_tensor(embeddings, name="embeddings")
    _common.check_rank(embeddings, 2, "(B, D)", "embeddings")
    if not embeddings.dtype.is_floating:
        raise TypeError(
            f"embeddings must be floating point, got {embeddings.dtype.name}")
    return embeddings


def pairwise_distance(embeddings, squared=False):
    """Euclidean distances between all rows of `embeddings`.

    Args:
        embeddings: float tensor (B, D).
        squared: return squared distances.

    Returns:
        (B, B) tensor of the same dtype, exactly 0 on the diagonal.
    """
    embeddings = _check_embeddings(embeddings)
    norms = tf.reduce_sum(tf.square(embeddings), axis=1, keepdims=True)
    squared_dist = (norms + tf.transpose(norms)
                    - 2.0 * tf.matmul(embeddings, embeddings, transpose_b=True))
    # Cancellation can make coincident points slightly negative.
    squared_dist = tf.maximum(squared_dist, 0.0)
    is_zero = tf.less_equal(squared_dist, 0.0)
    if squared:
        dist = squared_dist
    else:
        # sqrt has an infinite gradient at 0; nudging zeros keeps it finite,
        # and the mask below removes both the nudge and that gradient.
        dist = tf.sqrt(squared_dist + tf.cast(is_zero, squared_dist.dtype) * 1e-16)
    dist = dist * tf.cast(tf.logical_not(is_zero), dist.dtype)
    return tf.linalg.set_diag(dist, tf.zeros_like(tf.linalg.diag_part(dist)))


def angular_distance(embeddings):
    """One minus the cosine similarity between all rows of `embeddings`.

    Args:
        embeddings: float tensor (B, D); rows need not be normalised.

    Returns:
        (B, B) tensor in [0, 2]. As in tfa the diagonal is not forced to 0;
        it holds the round-off of `1 - |x̂|²`, clipped at 0.
    """
    embeddings = _check_embeddings(embeddings)
    unit = tf.math.l2_normalize(embeddings, axis=1)
    return tf.maximum(1.0 - tf.matmul(unit, unit, transpose_b=True), 0.0)


def distance_matrix(embeddings, distance_metric="L2"):
    """Pairwise distances of `embeddings` (B, D) under `distance_metric`.

    Args:
        embeddings: float tensor (B, D).
        distance_metric: "L2", "squared-L2", "angular", or a callable
            `(B, D) -> (B, B)` returning distances (smaller = closer).

    Returns:
        (B, B) float tensor.
    """
    if callable(distance_metric):
        embeddings = _check_embeddings(embeddings)
        dist = tf.convert_to_tensor(distance_metric(embeddings))
        batch = embeddings.shape[0]
        if dist.shape.rank is not None and (
                dist.shape.rank != 2
                or not dist.shape.is_compatible_with([batch, batch])):
            raise ValueError(
                "distance_metric callable must return shape (B, B) = "
                f"({batch}, {batch}), got {dist.shape}")
        return tf.cast(dist, embeddings.dtype)
    if distance_metric == "L2":
        return pairwise_distance(embeddings, squared=False)
    if distance_metric == "squared-L2":
        return pairwise_distance(embeddings, squared=True)
    if distance_metric == "angular":
        return angular_distance(embeddings)
    raise ValueError(
        f"distance_metric must be one of {DISTANCE_METRICS} or a callable, "
        f"got {distance_metric!r}")
