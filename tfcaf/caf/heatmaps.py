"""Turning raw (h, w) attention maps into image-sized heatmaps in [0, 1]."""

import tensorflow as tf

# A map is constant when max − min ≤ this · max(1, |max|): float rounding
# of a constant map (e.g. Grad-CAM's ReLU of all-negative terms) is no
# signal. `tfcaf.metrics.degenerate` counts such maps by the same rule.
RELATIVE_RANGE = 1e-12


def normalize(maps):
    """Min-max normalises each map of (B, ...) to [0, 1].

    A constant map (`RELATIVE_RANGE`) or one with NaNs becomes all zeros
    rather than NaN or rounding noise, so downstream box extraction finds
    nothing instead of crashing.
    """
    maps = tf.convert_to_tensor(maps, tf.float32)
    axes = list(range(1, len(maps.shape)))
    finite = tf.where(tf.math.is_finite(maps), maps, tf.zeros_like(maps))
    low = tf.reduce_min(finite, axis=axes, keepdims=True)
    high = tf.reduce_max(finite, axis=axes, keepdims=True)
    span = high - low
    bad = tf.reduce_any(~tf.math.is_finite(maps), axis=axes, keepdims=True)
    ok = (span > RELATIVE_RANGE * tf.maximum(1.0, tf.abs(high))) & ~bad
    return tf.where(ok, (finite - low) / tf.where(ok, span, 1.0), 0.0)


def to_image_size(maps, size):
    """Bilinearly resizes (B, h, w) maps to (B, H, W) and normalises them.

    Args:
        maps: (B, h, w) raw maps.
        size: (H, W) in pixels.

    Returns:
        (B, H, W) float32 in [0, 1].
    """
    maps = tf.convert_to_tensor(maps, tf.float32)
    resized = tf.image.resize(maps[..., None], size, method="bilinear")
    return normalize(resized[..., 0])
