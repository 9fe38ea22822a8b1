"""Argument checks shared by the pure-TensorFlow losses (no Keras)."""

import tensorflow as tf

_HALF_TYPES = (tf.float16, tf.bfloat16)


def to_compute_dtype(values, name):
    """Converts `values` to a float tensor, half precision raised to float32.

    Returns:
        (tensor, input_dtype): callers cast their result back to
        `input_dtype`, as tfa does.
    """
    values = tf.convert_to_tensor(values, name=name)
    if not values.dtype.is_floating:
        raise TypeError(f"{name} must be floating point, got {values.dtype.name}")
    # Pairwise distances and softmax lose too much in 16 bits.
    if values.dtype in _HALF_TYPES:
        return tf.cast(values, tf.float32), values.dtype
    return values, values.dtype


def as_dtype(value, dtype):
    """`value` as a tensor of `dtype`. Python numbers are converted directly:
    `tf.cast` would round them through float32 first."""
    if tf.is_tensor(value):
        return tf.cast(value, dtype)
    return tf.constant(value, dtype)


def check_rank(values, rank, shape_text, name):
    """Raises a ValueError naming `name` unless `values` has `rank`."""
    if values.shape.rank is not None and values.shape.rank != rank:
        raise ValueError(f"{name} must have shape {shape_text}, got {values.shape}")


def label_vector(labels, batch_like, name="labels", other="the batch"):
    """Flattens `labels` (B,) or (B, 1) to (B,) and checks it against B.

    Args:
        labels: integer or float tensor (B,) or (B, 1).
        batch_like: tensor whose first dimension is the expected B.
        name: argument name used in error messages.
        other: how error messages call `batch_like`.

    Returns:
        (B,) tensor. When B is only known at run time the check is an
        assertion that runs before the tensor is used.
    """
    labels = tf.convert_to_tensor(labels, name=name)
    shape = labels.shape
    if shape.rank is None or (shape.rank == 2 and shape[1] == 1):
        labels = tf.reshape(labels, [-1])
    elif shape.rank != 1:
        raise ValueError(f"{name} must have shape (B,) or (B, 1), got {shape}")
    expected = batch_like.shape[0] if batch_like.shape.rank else None
    if labels.shape[0] is not None and expected is not None:
        if labels.shape[0] != expected:
            raise ValueError(
                f"{name} has {labels.shape[0]} entries but {other} has "
                f"B = {expected} rows")
        return labels
    check = tf.debugging.assert_equal(
        tf.shape(labels)[0], tf.shape(batch_like)[0],
        message=f"{name} and {other} differ in size B")
    with tf.control_dependencies([check]):
        return tf.identity(labels)
