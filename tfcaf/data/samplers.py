"""Batch samplers for metric learning, as tf.data datasets of index batches.

The samplers only see an integer label per example, (N,), and yield int64
index batches; `ImageDataset.from_indices` turns them into examples. Batch
i is drawn with stateless random ops seeded by (seed, i), so a seed fixes
the whole sequence whatever the tf.data parallelism.

* `pk_batches`: P classes x K images, the usual triplet-loss batch, laid out
  class by class: (c_1 x K, c_2 x K, ...).
* `npair_batches`: one (anchor, positive) pair from each of b/2 distinct
  classes, laid out (a_1, p_1, a_2, p_2, ...), the layout
  `tfcaf.losses.npairs_embedding_loss` expects.

Within a batch, classes and images are drawn without replacement; classes
with fewer than K images are never drawn.
"""

import numpy as np
import tensorflow as tf
from tfcaf.errors import TfcafError


def _check_labels(labels):
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise TfcafError(
            "labels must be a 1-D integer array (N,), got shape "
            f"{labels.shape} and dtype {labels.dtype}")
    return labels


def _check_count(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
            or value < 1:
        raise TfcafError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _class_table(labels, images_per_class, classes_per_batch, sampler):
    """Indices grouped by class, for the classes with enough images.

    Returns:
        (order (N',) int64 example indices grouped by class, starts (C',)
        and counts (C',) int64 of each eligible class's run in `order`).
    """
    _, class_ids, counts = np.unique(labels, return_inverse=True,
                                     return_counts=True)
    eligible = np.flatnonzero(counts >= images_per_class)
    if eligible.size < classes_per_batch:
        largest = counts.max() if counts.size else 0
        raise TfcafError(
            f"{sampler} needs {classes_per_batch} classes with at least "
            f"{images_per_class} images each, but only {eligible.size} of the "
            f"{counts.size} classes in labels have that many (largest class: "
            f"{largest} images)")
    keep = np.isin(class_ids, eligible)
    order = np.flatnonzero(keep)[np.argsort(class_ids[keep], kind="stable")]
    counts = counts[eligible]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return order.astype(np.int64), starts.astype(np.int64), counts.astype(np.int64)


def _draw_seed(seed):
    if seed is None:
        return int(np.random.default_rng().integers(2 ** 62))
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) \
            or not 0 <= seed < 2 ** 63:
        raise TfcafError(f"seed must be an int64 >= 0 or None, got {seed!r}")
    return int(seed)


def _index_batches(table, classes_per_batch, images_per_class, seed,
                   num_batches):
    """Dataset of index batches (P*K,) drawn from `table`."""
    sample = _batch_sampler(table, classes_per_batch, images_per_class,
                            tf.constant(_draw_seed(seed), tf.int64))
    steps = tf.data.Dataset.counter()
    if num_batches is not None:
        steps = steps.take(_check_count(num_batches, "num_batches"))
    return steps.map(sample, num_parallel_calls=tf.data.AUTOTUNE,
                     deterministic=True)


def _batch_sampler(table, classes_per_batch, images_per_class, seed):
    """Function batch number (int64 scalar) -> index batch (P*K,) int64."""
    order, starts, counts = (tf.constant(t) for t in table)
    widest = int(table[2].max())

    def sample(step):
        class_keys = tf.random.stateless_uniform(
            [tf.size(counts)], seed=tf.stack([seed, 2 * step]))
        classes = tf.math.top_k(class_keys, k=classes_per_batch).indices
        class_counts = tf.gather(counts, classes)
        # Slots past a class's size get key -1, below every uniform key, so
        # the top K keys are K distinct images of that class.
        image_keys = tf.random.stateless_uniform(
            [classes_per_batch, widest], seed=tf.stack([seed, 2 * step + 1]))
        slots = tf.range(widest, dtype=tf.int64)
        image_keys = tf.where(slots[None, :] < class_counts[:, None],
                              image_keys, -1.0)
        picked = tf.math.top_k(image_keys, k=images_per_class).indices
        positions = tf.gather(starts, classes)[:, None] + tf.cast(picked, tf.int64)
        return tf.reshape(tf.gather(order, positions),
                          [classes_per_batch * images_per_class])

    return sample


def pk_batches(labels, classes_per_batch, images_per_class, *, seed=None,
               num_batches=None):
    """Batches of P classes x K images each.

    Args:
        labels: integer array (N,), one class label per example.
        classes_per_batch: P.
        images_per_class: K.
        seed: int >= 0 fixing the batch sequence; None draws a fresh one.
        num_batches: number of batches; None repeats forever.

    Returns:
        tf.data.Dataset of int64 index batches (P*K,), class-major.

    Raises:
        TfcafError: fewer than P classes have at least K images.
    """
    labels = _check_labels(labels)
    classes_per_batch = _check_count(classes_per_batch, "classes_per_batch")
    images_per_class = _check_count(images_per_class, "images_per_class")
    table = _class_table(labels, images_per_class, classes_per_batch,
                         "pk_batches")
    return _index_batches(table, classes_per_batch, images_per_class, seed,
                          num_batches)


def npair_batches(labels, batch_size, *, seed=None, num_batches=None):
    """Batches of one (anchor, positive) pair from b/2 distinct classes.

    Args:
        labels: integer array (N,), one class label per example.
        batch_size: b, even.
        seed: int >= 0 fixing the batch sequence; None draws a fresh one.
        num_batches: number of batches; None repeats forever.

    Returns:
        tf.data.Dataset of int64 index batches (b,) laid out
        (a_1, p_1, a_2, p_2, ...), a_i != p_i.

    Raises:
        TfcafError: b is odd, or fewer than b/2 classes have 2 images.
    """
    batch_size = _check_count(batch_size, "batch_size")
    if batch_size % 2:
        raise TfcafError(
            f"batch_size must be even (pairs of anchor and positive), got {batch_size}")
    labels = _check_labels(labels)
    table = _class_table(labels, 2, batch_size // 2, "npair_batches")
    return _index_batches(table, batch_size // 2, 2, seed, num_batches)
