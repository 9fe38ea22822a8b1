"""CAM and Grad-CAM on a split model (SPEC.md section 2)."""

import tensorflow as tf


def cam(feature_maps, dense, targets):
    """Class activation maps Σ_c W[c, t] · A[..., c].

    Args:
        feature_maps: A, (B, h, w, C) float32.
        dense: the Dense layer of a `Dense(GAP(A))` head, kernel (C, K).
        targets: (B,) int class ids.

    Returns:
        (B, h, w) float32 raw maps (may be negative).
    """
    weights = tf.gather(tf.transpose(dense.kernel), targets)
    return tf.einsum("bhwc,bc->bhw", feature_maps, tf.cast(weights, tf.float32))


def gradcam(head, feature_maps, targets=None):
    """Grad-CAM: ReLU(Σ_c α_c A[..., c]), α_c = spatial mean of ∂y/∂A.

    Args:
        head: model A -> output (B, K).
        feature_maps: A, (B, h, w, C) float32.
        targets: (B,) int class ids, scoring y = logit of the target; None
            for an embedding output, scoring y = e · stop_gradient(e).

    Returns:
        (B, h, w) float32 maps, >= 0.
    """
    with tf.GradientTape() as tape:
        tape.watch(feature_maps)
        outputs = tf.cast(head(feature_maps, training=False), tf.float32)
        if targets is None:
            scores = tf.reduce_sum(outputs * tf.stop_gradient(outputs), -1)
        else:
            scores = tf.gather(outputs, targets, batch_dims=1)
        total = tf.reduce_sum(scores)
    grads = tape.gradient(total, feature_maps)
    alpha = tf.reduce_mean(grads, axis=[1, 2])
    return tf.nn.relu(tf.einsum("bhwc,bc->bhw", feature_maps, alpha))
