"""Retrieval metrics of docs/method.md §4: Recall@K and NMI.

`recall_at_k` ranks neighbours by Euclidean distance in chunks of queries,
keeping only each chunk's top K, so memory grows as chunk x N rather than
N x N (100,000 x 128 embeddings need about 0.5 GB instead of 40 GB). It runs
on whatever device TensorFlow places it on.
"""

import numpy as np
import tensorflow as tf

# Distance entries held per chunk: 2**25 float32 values are 128 MiB.
_CHUNK_ELEMENTS = 2 ** 25


def _check_inputs(embeddings, labels):
    embeddings = np.asarray(embeddings)
    labels = np.asarray(labels)
    if embeddings.ndim != 2 or not np.issubdtype(embeddings.dtype, np.floating):
        raise ValueError("embeddings must be a float array (N, D), got shape "
                         f"{embeddings.shape} and dtype {embeddings.dtype}")
    if labels.shape != embeddings.shape[:1]:
        raise ValueError(f"labels must have shape (N,) = ({embeddings.shape[0]},), "
                         f"got {labels.shape}")
    return embeddings, labels


def _check_ks(ks, num_items):
    ks = tuple(ks)
    if not ks or any(isinstance(k, bool) or not isinstance(k, (int, np.integer))
                     or k < 1 for k in ks):
        raise ValueError(f"ks must be positive integers, got {ks!r}")
    if max(ks) > num_items - 1:
        raise ValueError(f"ks asks for {max(ks)} neighbours but only "
                         f"{num_items - 1} other items exist (N = {num_items})")
    return tuple(int(k) for k in ks)


@tf.function(reduce_retracing=True)
def _chunk_hits(queries, start, items, squared_norms, labels, kmax):
    """Which of each query's first 1..kmax neighbours share its label.

    Args:
        queries: (C, D) rows start..start+C-1 of `items`.
        start: scalar int32, index of the first query.
        items: (N, D) all embeddings.
        squared_norms: (N,) squared norms of `items`.
        labels: (N,) integer labels.
        kmax: scalar int32, largest K.

    Returns:
        (C, kmax) bool, entry (q, j) true if one of the j+1 nearest other
        items of query q has its label.
    """
    # Larger score = nearer: -(|q - x|² - |q|²); |q|² is the same for a
    # whole row, so it cannot change the ranking.
    scores = (2.0 * tf.matmul(queries, items, transpose_b=True)
              - squared_norms[None, :])
    rows = start + tf.range(tf.shape(queries)[0])
    # One extra candidate, then the query itself is dropped (or, when it is
    # not among them, the last one): cheaper than masking a (C, N) copy.
    # Only items at (numerically) zero distance can outrank the query, so
    # when it is missing, all kmax + 1 candidates are such items and any
    # kmax of them are nearest neighbours.
    _, candidates = tf.math.top_k(scores, k=kmax + 1)
    is_self = tf.equal(candidates, rows[:, None])
    has_self = tf.reduce_any(is_self, axis=1, keepdims=True)
    keep = tf.logical_and(tf.logical_not(is_self), tf.logical_or(
        has_self, tf.range(kmax + 1)[None, :] < kmax))
    neighbours = tf.reshape(tf.boolean_mask(candidates, keep), [-1, kmax])
    same = tf.equal(tf.gather(labels, neighbours), tf.gather(labels, rows)[:, None])
    return tf.cumsum(tf.cast(same, tf.int32), axis=1) > 0


def neighbour_hits(embeddings, labels, kmax=1, *, chunk_size=None):
    """Per query, whether one of its 1..kmax nearest other items (Euclidean
    distance, the query itself excluded) shares its label.

    Args:
        embeddings: float array (N, D); float64 is kept, others use float32.
        labels: integer array (N,).
        kmax: largest K, in [1, N - 1].
        chunk_size: queries per chunk; default keeps a chunk's distance
            matrix at about 2**25 entries.

    Returns:
        (N, kmax) bool; column 0 is the R@1 condition of each query.
    """
    embeddings, labels = _check_inputs(embeddings, labels)
    num_items = embeddings.shape[0]
    kmax = _check_ks((kmax,), num_items)[0]
    if chunk_size is None:
        chunk_size = max(1, _CHUNK_ELEMENTS // num_items)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) \
            or chunk_size < 1:
        raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    dtype = tf.float64 if embeddings.dtype == np.float64 else tf.float32
    items = tf.constant(embeddings, dtype)
    squared_norms = tf.reduce_sum(tf.square(items), axis=1)
    labels_t = tf.constant(labels)
    kmax_t = tf.constant(kmax, tf.int32)
    return np.concatenate([
        _chunk_hits(items[start:start + chunk_size], tf.constant(start, tf.int32), items,
                    squared_norms, labels_t, kmax_t).numpy()
        for start in range(0, num_items, chunk_size)])


def recall_at_k(embeddings, labels, ks=(1, 2, 4, 8), *, chunk_size=None):
    """Recall@K: a query counts when one of its K nearest other items
    (Euclidean distance, the query itself excluded) shares its label.

    Args:
        embeddings: float array (N, D); float64 is kept, others use float32.
        labels: integer array (N,).
        ks: the K values, each in [1, N - 1].
        chunk_size: queries per chunk (see `neighbour_hits`).

    Returns:
        dict K -> recall in [0, 1].
    """
    embeddings, labels = _check_inputs(embeddings, labels)
    ks = _check_ks(ks, embeddings.shape[0])
    hits = neighbour_hits(embeddings, labels, max(ks), chunk_size=chunk_size)
    return {k: float(hits[:, k - 1].mean()) for k in ks}


def normalized_mutual_information(labels, clusters):
    """NMI = I(Ω; C) / sqrt(H(Ω) H(C)) of two labelings of the same items.

    Args:
        labels: (N,) class labels Ω.
        clusters: (N,) cluster assignment C.

    Returns:
        float in [0, 1]; 1 when both put everything in one group and 0 when
        only one of them does (the limits sklearn uses).
    """
    labels, clusters = np.asarray(labels).ravel(), np.asarray(clusters).ravel()
    if labels.shape != clusters.shape:
        raise ValueError(f"labels {labels.shape} and clusters {clusters.shape} "
                         "must have the same shape (N,)")
    _, class_ids = np.unique(labels, return_inverse=True)
    _, cluster_ids = np.unique(clusters, return_inverse=True)
    num_classes = class_ids.max(initial=-1) + 1
    num_clusters = cluster_ids.max(initial=-1) + 1
    if num_classes == num_clusters and num_classes <= 1:
        return 1.0
    joint = np.bincount(class_ids * num_clusters + cluster_ids,
                        minlength=num_classes * num_clusters)
    joint = joint.reshape(num_classes, num_clusters) / labels.size
    p_class, p_cluster = joint.sum(axis=1), joint.sum(axis=0)
    nonzero = joint > 0
    mutual = np.sum(joint[nonzero] * np.log(
        joint[nonzero] / np.outer(p_class, p_cluster)[nonzero]))
    if mutual <= 0:
        return 0.0
    entropy_class = -np.sum(p_class * np.log(p_class))
    entropy_cluster = -np.sum(p_cluster * np.log(p_cluster))
    return float(mutual / np.sqrt(entropy_class * entropy_cluster))


def nmi(embeddings, labels, *, seed=0, n_init=10):
    """NMI between the labels and a K-means clustering of the embeddings,
    as the metric-learning literature computes it: scikit-learn K-means with
    10 initialisations, the best (lowest inertia) kept.

    Args:
        embeddings: float array (N, D).
        labels: integer array (N,); K = the number of distinct labels.
        seed: K-means `random_state`.
        n_init: K-means initialisations (sklearn's `n_init`); one restart
            is noisy and biased low.

    Returns:
        float in [0, 1], see `normalized_mutual_information`.
    """
    # sklearn is only needed here; importing it lazily keeps
    # `import tfcaf.metrics` light.
    from sklearn.cluster import KMeans

    embeddings, labels = _check_inputs(embeddings, labels)
    num_classes = np.unique(labels).size
    clusters = KMeans(n_clusters=num_classes, n_init=n_init,
                      random_state=seed).fit_predict(embeddings)
    return normalized_mutual_information(labels, clusters)


def recall_columns(embeddings, labels, ks=(1, 2, 4, 8)):
    """The registry's "recall": {"recall@K": R@K in [0, 1]}."""
    return {f"recall@{k}": float(v) for k, v in recall_at_k(embeddings, labels, ks).items()}


def nmi_columns(embeddings, labels, nmi_inits=10, seed=0):
    """The registry's "nmi": {"nmi": NMI in [0, 1]} (`nmi`)."""
    return {"nmi": float(nmi(embeddings, labels, seed=seed, n_init=nmi_inits))}
