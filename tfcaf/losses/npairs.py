"""N-pair losses (Sohn, NIPS 2016) with tensorflow-addons 0.23 semantics.

Pure TensorFlow (no Keras), so the module also runs on TF 2.15 where the
golden files are produced.

`npairs_loss` takes the similarity matrix anchors · positivesᵀ; the targets
are the label-equality matrix with each row normalised to sum 1, and the loss
is the mean softmax cross-entropy over the rows. `npairs_embedding_loss`
builds that matrix from the embeddings of a batch laid out as
(anchor_0, positive_0, anchor_1, positive_1, ...).

Differences from tfa (documented): float16/bfloat16 are computed in float32;
labels are compared in their own dtype (tfa casts them to the similarity
dtype first, merging integer labels above 2**24 in float32); in the
multilabel loss a row without any label is left out of the mean (tfa: NaN).
"""

import tensorflow as tf

from tfcaf.losses import _common


def _check_similarity(similarity):
    similarity, input_dtype = _common.to_compute_dtype(similarity, "similarity")
    _common.check_rank(similarity, 2, "(B, B)", "similarity")
    rows, cols = similarity.shape
    if rows is not None and cols is not None and rows != cols:
        raise ValueError(f"similarity must be square (B, B), got {similarity.shape}")
    return similarity, input_dtype


def _row_normalised_cross_entropy(targets, similarity):
    """Mean softmax cross-entropy of rows with a non-zero target mass.

    Args:
        targets: (B, B) non-negative weights.
        similarity: (B, B) logits.

    Returns:
        Scalar; 0 when no row has a target.
    """
    mass = tf.reduce_sum(targets, axis=1, keepdims=True)
    targets = tf.math.divide_no_nan(targets, mass)
    per_row = tf.nn.softmax_cross_entropy_with_logits(labels=targets, logits=similarity)
    has_target = tf.cast(mass[:, 0] > 0, per_row.dtype)
    return tf.math.divide_no_nan(tf.reduce_sum(per_row * has_target),
                                 tf.reduce_sum(has_target))


def npairs_loss(labels, similarity):
    """N-pair loss on a similarity matrix (`tfa.losses.npairs_loss`).

    Args:
        labels: class labels (B,) or (B, 1) of the pairs; anchor i and
            positive i share label i.
        similarity: float (B, B), entry (i, j) = anchor_i · positive_j.

    Returns:
        Scalar loss with the dtype of `similarity`.
    """
    similarity, input_dtype = _check_similarity(similarity)
    labels = _common.label_vector(labels, similarity, other="similarity")
    # Every row matches at least its own column, so no row is empty.
    targets = tf.cast(tf.equal(labels[:, None], labels[None, :]), similarity.dtype)
    loss = _row_normalised_cross_entropy(targets, similarity)
    return tf.cast(loss, input_dtype)


def npairs_multilabel_loss(labels, similarity):
    """Multilabel N-pair loss (`tfa.losses.npairs_multilabel_loss`).

    Args:
        labels: multi-hot (B, C), dense or `tf.SparseTensor`; the target of
            (i, j) is the number of labels pairs i and j share.
        similarity: float (B, B), entry (i, j) = anchor_i · positive_j.

    Returns:
        Scalar loss with the dtype of `similarity`, the mean over the rows
        that have at least one label (0 if none has).
    """
    similarity, input_dtype = _check_similarity(similarity)
    if isinstance(labels, tf.SparseTensor):
        labels = tf.sparse.to_dense(labels)
    labels = tf.cast(tf.convert_to_tensor(labels, name="labels"), similarity.dtype)
    _common.check_rank(labels, 2, "(B, C)", "labels")
    if labels.shape[0] is not None and similarity.shape[0] is not None \
            and labels.shape[0] != similarity.shape[0]:
        raise ValueError(
            f"labels has {labels.shape[0]} rows but similarity has "
            f"B = {similarity.shape[0]}")
    targets = tf.matmul(labels, labels, transpose_b=True)
    loss = _row_normalised_cross_entropy(targets, similarity)
    return tf.cast(loss, input_dtype)


def split_pairs(labels, embeddings):
    """Splits a batch laid out as (a_0, p_0, a_1, p_1, ...) into its pairs.

    Args:
        labels: (2N,) or (2N, 1) labels; each pair's two entries are equal.
        embeddings: float (2N, D).

    Returns:
        (pair_labels (N,), anchors (N, D), positives (N, D)).
    """
    _common.check_rank(embeddings, 2, "(2N, D)", "embeddings")
    labels = _common.label_vector(labels, embeddings, other="embeddings")
    size = embeddings.shape[0]
    if size is not None and size % 2:
        raise ValueError(
            "embeddings must hold (anchor, positive) pairs, got an odd batch "
            f"size B = {size}")
    checks = [tf.debugging.assert_equal(
        tf.shape(embeddings)[0] % 2, 0,
        message="embeddings must hold (anchor, positive) pairs: odd batch size"),
        tf.debugging.assert_equal(
        labels[0::2], labels[1::2],
        message="labels of an (anchor, positive) pair differ; expected the "
                "layout (a_0, p_0, a_1, p_1, ...)")]
    with tf.control_dependencies(checks):
        return (tf.identity(labels[0::2]), tf.identity(embeddings[0::2]),
                tf.identity(embeddings[1::2]))


def npairs_embedding_loss(labels, embeddings, l2_reg=0.0):
    """N-pair loss on the embeddings of a batch of (anchor, positive) pairs.

    Args:
        labels: (2N,) or (2N, 1) labels of the layout (a_0, p_0, a_1, ...).
        embeddings: float (2N, D), not normalised.
        l2_reg: Python float, weight of `0.25 * (mean |a|² + mean |p|²)`,
            the regulariser of the original TF-slim N-pair loss
            (`reg_lambda` there); 0 turns it off, as in tfa.

    Returns:
        Scalar loss with the dtype of `embeddings`.
    """
    if not l2_reg >= 0:
        raise ValueError(f"l2_reg must be a float >= 0, got {l2_reg!r}")
    embeddings, input_dtype = _common.to_compute_dtype(embeddings, "embeddings")
    pair_labels, anchors, positives = split_pairs(labels, embeddings)
    similarity = tf.matmul(anchors, positives, transpose_b=True)
    loss = npairs_loss(pair_labels, similarity)
    if l2_reg:
        squared_norms = (tf.reduce_mean(tf.reduce_sum(tf.square(anchors), axis=1))
                         + tf.reduce_mean(tf.reduce_sum(tf.square(positives), axis=1)))
        loss += _common.as_dtype(0.25 * l2_reg, loss.dtype) * squared_norms
    return tf.cast(loss, input_dtype)
