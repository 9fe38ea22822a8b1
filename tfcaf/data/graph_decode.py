"""The graph-side twin of `tfcaf.data.images.read_image`: encoded image
bytes to the same float RGB pixels inside a TensorFlow graph, where no
Python runs (the SavedModel's `predict_image_bytes` under TF Serving).
`tests/test_export.py` checks the two agree on 13 modes and depths."""

import tensorflow as tf


def decoded_pixels(data):
    """One encoded image (a scalar string tensor) as (h, w, 3) float32 RGB
    on [0, 255], graph-safe, as `tfcaf.data.read_image` reads the file:
    16-bit PNGs keep their 16 bits (divided by 65535), alpha is composited
    on white, and JPEGs use the accurate integer DCT that PIL uses."""
    def jpeg():
        return tf.cast(tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE"),
                       tf.float32)

    def png():
        # uint16 keeps a 16-bit PNG's bits; 8-bit samples come as v·257.
        return tf.cast(tf.io.decode_png(data, dtype=tf.uint16), tf.float32) * (255.0 / 65535.0)

    def other():  # GIF, BMP: 8 bits
        return tf.cast(tf.io.decode_image(data, expand_animations=False), tf.float32)

    def composited(values):
        channels = tf.shape(values)[-1]
        colour = tf.cond(channels < 3, lambda: tf.tile(values[..., :1], [1, 1, 3]),
                         lambda: values[..., :3])
        alpha = tf.cond(channels % 2 == 0, lambda: values[..., -1:] / 255.0,
                        lambda: tf.ones_like(values[..., :1]))
        return colour * alpha + 255.0 * (1.0 - alpha)
    is_png = tf.equal(tf.strings.substr(data, 0, 8), b"\x89PNG\r\n\x1a\n")
    return tf.cond(tf.io.is_jpeg(data), jpeg,
                   lambda: composited(tf.cond(is_png, png, other)))
