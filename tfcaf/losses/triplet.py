"""Triplet loss with semi-hard negative mining (tensorflow-addons 0.23).

Pure TensorFlow (no Keras), so the module also runs on TF 2.15 where the
golden files are produced.

Semantics, as in `tfa.losses.triplet_semihard_loss`: for every ordered
positive pair (a, p), a != p, the negative n is the closest negative of `a`
with d(a, n) > d(a, p); when there is none, the farthest negative of `a`;
when `a` has no negative at all, the smallest entry of row `a` of the
distance matrix. The loss is the mean over positive pairs of
max(d(a, p) - d(a, n) + margin, 0).

Differences from tfa (documented):
  * a batch without any positive pair gives 0 and zero gradients (tfa: NaN);
  * the mining sorts each row once, O(B²) memory instead of tfa's O(B³);
  * negatives tied at the mined distance share its gradient equally, as in
    tfa. tfa's masked-reduction trick differs only when, in addition, an
    entry that is not a negative (the anchor itself or a positive) lies at
    exactly that distance and it is the row's maximum (semi-hard negative)
    or minimum (farthest negative): part of the gradient then goes to that
    entry. That takes exactly coincident distances, e.g. collapsed
    embeddings; for L2, squared-L2 and angular distances the gradient
    between coincident points vanishes, so the embedding gradients agree
    (the golden "collapsed" cases);
  * float64 embeddings are supported (tfa only float16/bfloat16/float32).
"""

import tensorflow as tf

from tfcaf.losses import _common
from tfcaf.losses import distances


def _tied_mean(sorted_keys, sorted_dist):
    """Replaces each sorted entry by the mean of its run of equal keys.

    The values do not change (a run holds equal distances); the point is the
    gradient, which is then shared equally by negatives at the same distance,
    as tfa's masked reduce_min/reduce_max share it.

    Args:
        sorted_keys: (B, B) row-wise ascending keys, no gradient.
        sorted_dist: (B, B) the distances in the same order.

    Returns:
        (B, B) tensor like `sorted_dist`.
    """
    batch = tf.shape(sorted_keys)[0]
    starts = tf.concat([tf.ones([batch, 1], tf.bool),
                        sorted_keys[:, 1:] != sorted_keys[:, :-1]], axis=1)
    run = tf.cumsum(tf.cast(starts, tf.int32), axis=1) - 1
    run += tf.range(batch)[:, None] * batch  # runs never span two rows
    means = tf.math.unsorted_segment_mean(
        tf.reshape(sorted_dist, [-1]), tf.reshape(run, [-1]), batch * batch)
    return tf.gather(means, run)


def _mined_negative_distances(dist, negative):
    """Distance from anchor a to the negative mined for each pair (a, p).

    Args:
        dist: (B, B) float distances, rows are anchors.
        negative: (B, B) bool, True where column n is a negative of row a.

    Returns:
        (B, B) float, entry (a, p) = d(a, n) for the negative n mined for
        the pair (a, p); computed for every column, the caller keeps the
        positive ones.
    """
    # Rows hold each anchor's negatives in ascending distance; non-negatives
    # are pushed behind them with an infinite key.
    keys = tf.where(negative, tf.stop_gradient(dist),
                    tf.constant(float("inf"), dist.dtype))
    order = tf.argsort(keys, axis=1, stable=True)
    sorted_keys = tf.gather(keys, order, batch_dims=1)
    sorted_dist = _tied_mean(sorted_keys, tf.gather(dist, order, batch_dims=1))
    num_neg = tf.reduce_sum(tf.cast(negative, tf.int32), axis=1, keepdims=True)
    # First negative strictly farther than d(a, p).
    farther = tf.searchsorted(sorted_keys, tf.stop_gradient(dist), side="right",
                              out_type=tf.int32)
    farthest = tf.maximum(num_neg - 1, 0)
    rank = tf.where(farther < num_neg, farther, farthest)
    mined = tf.gather(sorted_dist, rank, batch_dims=1)
    # tfa's masked maximum over an empty mask yields the row minimum.
    row_min = tf.reduce_min(dist, axis=1, keepdims=True)
    return tf.where(num_neg > 0, mined, row_min)


def semihard_loss_from_distances(labels, dist, margin=1.0):
    """Semi-hard triplet loss given a precomputed distance matrix.

    Args:
        labels: (B,) class labels.
        dist: (B, B) float distances between the batch's embeddings.
        margin: float margin.

    Returns:
        Scalar of `dist`'s dtype; 0 when the batch has no positive pair.
    """
    same = tf.equal(labels[:, None], labels[None, :])
    not_self = tf.logical_not(tf.cast(tf.eye(tf.shape(dist)[0]), tf.bool))
    positive = tf.logical_and(same, not_self)
    negative = tf.logical_not(same)
    mined = _mined_negative_distances(dist, negative)
    # tf.maximum (not relu) passes the gradient at exactly 0, like tfa.
    hinge = tf.maximum(_common.as_dtype(margin, dist.dtype) + dist - mined, 0.0)
    positive_f = tf.cast(positive, dist.dtype)
    total = tf.reduce_sum(hinge * positive_f)
    return tf.math.divide_no_nan(total, tf.reduce_sum(positive_f))


def triplet_semihard_loss(labels, embeddings, margin=1.0, distance_metric="L2"):
    """Triplet loss with semi-hard mining over all positive pairs of a batch.

    Args:
        labels: integer (or float) class labels (B,) or (B, 1).
        embeddings: float tensor (B, D). float16/bfloat16 are computed in
            float32 and the result cast back.
        margin: float margin.
        distance_metric: "L2", "squared-L2", "angular" or a callable
            `(B, D) -> (B, B)` distance matrix.

    Returns:
        Scalar loss with the dtype of `embeddings`; 0 (not NaN) when no
        label occurs twice.
    """
    embeddings, input_dtype = _common.to_compute_dtype(embeddings, "embeddings")
    _common.check_rank(embeddings, 2, "(B, D)", "embeddings")
    labels = _common.label_vector(labels, embeddings, other="embeddings")
    dist = distances.distance_matrix(embeddings, distance_metric)
    loss = semihard_loss_from_distances(labels, dist, margin)
    return tf.cast(loss, input_dtype)
