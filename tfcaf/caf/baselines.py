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


def scores_and_gradients(head, feature_maps, targets=None):
    """(y (B,), g = ∂y/∂A (B, h, w, C)) for each image's score y.

    Args:
        head: model A -> output (B, K).
        feature_maps: A, (B, h, w, C) float32.
        targets: what y is (`targets.Objective.score`): (B,) int class ids
            (the target's logit), None (the output as a whole,
            y = e · stop_gradient(e)), or an `Objective` (also the cosine
            similarity to a reference).
    """
    objective = as_objective(targets)
    with tf.GradientTape() as tape:
        tape.watch(feature_maps)
        scores = objective.score(head(feature_maps, training=False))
        # Images are independent, so the gradient of the sum is each
        # image's own gradient.
        total = tf.reduce_sum(scores)
    return scores, tape.gradient(total, feature_maps)


def score_gradients(head, feature_maps, targets=None):
    """g = ∂y/∂A (B, h, w, C) float32 for each image's score y; arguments
    as `scores_and_gradients`."""
    return scores_and_gradients(head, feature_maps, targets)[1]


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


# xplique's `GradCAMPP.EPSILON`, added where its denominator is 0.
XPLIQUE_GRADCAMPP_EPSILON = 1e-4


def gradcampp(head, feature_maps, targets=None, epsilon=1e-6, variant="pytorch-grad-cam"):
    """Grad-CAM++ (Chattopadhay et al., WACV 2018, eq. 19) as `variant`
    computes it, with g = ∂y/∂A and ΣA the spatial sum of each channel
    (the closed form for y = exp(score), written in the score's gradients):

    - "pytorch-grad-cam" (default): α = g² / (2 g² + ΣA g³ + ε), 0 where
      g = 0; w_c = Σ_ij α ReLU(g).
    - "tf-keras-vis": the derivatives of exp(y) (e^y g, e^y g², e^y g³),
      α = e^y g² / (2 e^y g² + ΣA e^y g³) (denominator + 1 where g² = 0),
      α renormalised to spatial sum 1 per channel; w_c = Σ_ij α ReLU(e^y g),
      so the map carries the factor e^y.
    - "xplique": α = g² / (2 g² + mean_ij(A) g³) (+ 1e-4 where that is 0),
      w_c = mean_ij α ReLU(g).

    map = ReLU(Σ_c w_c A_c) for all three.

    Args: as `score_gradients`; epsilon is pytorch-grad-cam's guard.

    Returns:
        (B, h, w) float32 maps, >= 0.
    """
    scores, g = scores_and_gradients(head, feature_maps, targets)
    return _weighted_sum(feature_maps,
                         _GRADCAMPP_WEIGHTS[variant](scores, g, feature_maps, epsilon))


def _gradcampp_pytorch_grad_cam(scores, g, feature_maps, epsilon):
    g2 = tf.square(g)
    sums = tf.reduce_sum(feature_maps, axis=[1, 2], keepdims=True)
    alpha = g2 / (2.0 * g2 + sums * g2 * g + epsilon)
    alpha = tf.where(tf.equal(g, 0.0), tf.zeros_like(alpha), alpha)
    return tf.reduce_sum(alpha * tf.nn.relu(g), axis=[1, 2])


def _gradcampp_tf_keras_vis(scores, g, feature_maps, epsilon):
    # tf-keras-vis' lines, in its order (the e^y factors rounded as there).
    first = tf.exp(scores)[:, None, None, None] * g
    second = first * g
    third = second * g
    sums = tf.reduce_sum(feature_maps, axis=[1, 2], keepdims=True)
    denominator = second * 2.0 + third * sums
    alphas = second / (denominator + tf.cast(tf.equal(second, 0.0), tf.float32))
    total = tf.reduce_sum(alphas, axis=[1, 2], keepdims=True)
    alphas = alphas / (total + tf.cast(tf.equal(total, 0.0), tf.float32))
    return tf.reduce_sum(tf.nn.relu(first) * alphas, axis=[1, 2])


def _gradcampp_xplique(scores, g, feature_maps, epsilon):
    means = tf.reduce_mean(feature_maps, axis=[1, 2], keepdims=True)
    denominator = 2.0 * tf.square(g) + tf.pow(g, 3) * means
    denominator += tf.cast(tf.equal(denominator, 0.0), tf.float32) * XPLIQUE_GRADCAMPP_EPSILON
    return tf.reduce_mean(tf.square(g) / denominator * tf.nn.relu(g), axis=[1, 2])


_GRADCAMPP_WEIGHTS = {"pytorch-grad-cam": _gradcampp_pytorch_grad_cam,
                      "tf-keras-vis": _gradcampp_tf_keras_vis,
                      "xplique": _gradcampp_xplique}


def gradcampp_call(call):
    """`gradcampp` of a `methods.MethodCall` (options {"variant"})."""
    return gradcampp(call.head(gradient=True), call.feature_maps, call.objective,
                     variant=call.options["variant"])
