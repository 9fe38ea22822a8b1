"""CAM, Grad-CAM and Grad-CAM++ on a split model (docs/method.md §2)."""

import tensorflow as tf

from tfcaf.caf.targets import CLASSES, as_objective


def cam(feature_maps, dense, targets):
    """Class activation maps Σ_c W[c, t] · A[..., c].

    Args:
        feature_maps: A, (B, h, w, C) float32.
        dense: the Dense layer of a `Dense(GAP(A))` head, kernel (C, K).
        targets: (B,) int class ids, or a `targets.Objective` of kind
            `CLASSES`.

    Returns:
        (B, h, w) float32 raw maps (may be negative).
    """
    objective = as_objective(targets)
    if objective.kind != CLASSES:
        raise ValueError(f"CAM explains class ids, not a target of kind {objective.kind!r}")
    weights = tf.gather(tf.transpose(dense.kernel), objective.classes)
    return tf.einsum("bhwc,bc->bhw", feature_maps, tf.cast(weights, tf.float32))


def score_gradients(head, feature_maps, targets=None):
    """g = ∂y/∂A for each image's score y.

    Args:
        head: model A -> output (B, K).
        feature_maps: A, (B, h, w, C) float32.
        targets: what y is (`targets.Objective.score`): (B,) int class ids
            (the target's logit), None (the output as a whole,
            y = e · stop_gradient(e)), or an `Objective` (also the cosine
            similarity to a reference).

    Returns:
        (B, h, w, C) float32 gradients.
    """
    objective = as_objective(targets)
    with tf.GradientTape() as tape:
        tape.watch(feature_maps)
        scores = objective.score(head(feature_maps, training=False))
        # Images are independent, so the gradient of the sum is each
        # image's own gradient.
        total = tf.reduce_sum(scores)
    return tape.gradient(total, feature_maps)


def _weighted_sum(feature_maps, weights):
    """ReLU(Σ_c w_c A[..., c]): (B, h, w, C), (B, C) -> (B, h, w)."""
    return tf.nn.relu(tf.einsum("bhwc,bc->bhw", feature_maps, weights))


def gradcam(head, feature_maps, targets=None):
    """Grad-CAM: ReLU(Σ_c α_c A[..., c]), α_c = spatial mean of ∂y/∂A.

    Args: as `score_gradients`.

    Returns:
        (B, h, w) float32 maps, >= 0.
    """
    grads = score_gradients(head, feature_maps, targets)
    return _weighted_sum(feature_maps, tf.reduce_mean(grads, axis=[1, 2]))


def gradcampp(head, feature_maps, targets=None, epsilon=1e-6):
    """Grad-CAM++ (Chattopadhay et al., WACV 2018, eq. 19).

    With g = ∂y/∂A (the closed form for y = exp(score), written in the
    score's gradients):
        α_ijc = g² / (2 g² + (Σ_ab A_abc) g³ + ε), and 0 where g = 0;
        w_c = Σ_ij α_ijc ReLU(g_ijc);  map = ReLU(Σ_c w_c A_c).
    This is exactly jacobgil/pytorch-grad-cam's `GradCAMPlusPlus` (same
    ε = 1e-6 and zeroing), so maps agree with that library's.

    Args: as `score_gradients`; epsilon keeps α finite where the
        denominator vanishes.

    Returns:
        (B, h, w) float32 maps, >= 0.
    """
    g = score_gradients(head, feature_maps, targets)
    g2 = tf.square(g)
    sums = tf.reduce_sum(feature_maps, axis=[1, 2], keepdims=True)
    alpha = g2 / (2.0 * g2 + sums * g2 * g + epsilon)
    alpha = tf.where(tf.equal(g, 0.0), tf.zeros_like(alpha), alpha)
    weights = tf.reduce_sum(alpha * tf.nn.relu(g), axis=[1, 2])
    return _weighted_sum(feature_maps, weights)
