"""Input-space attributions, as xplique 2.0.2 computes them (docs/method.md
§2): Saliency, Integrated Gradients and Occlusion.

Each takes a `methods.MethodCall` and returns (P, H, W) float32 maps at
the input's size (the channels reduced as the reference does). The score
is the objective's (`targets.Objective.score`) on the whole model's
output: the logits (a final softmax left out), or the embedding before a
final L2 normalisation for the `OUTPUT` kind (whose score has no gradient
through it). Graph-safe; the loops over steps and patches are
`tf.while_loop`s, so a graph holds one pass of the P images.
"""

import math

import tensorflow as tf


def _gradients(call, images, goal):
    """(P, H, W, C) ∂score/∂images of the P problems of `goal`."""
    split = call.explainer.split
    with tf.GradientTape() as tape:
        tape.watch(images)
        features = tf.cast(split.features(images, training=False), tf.float32)
        total = tf.reduce_sum(goal.score(call.explainer.gradient_head(features,
                                                                      training=False)))
    return tape.gradient(total, images)


def saliency(call):
    """Saliency (Simonyan et al., 2014) as xplique's `Saliency`: the
    largest |∂score/∂x| over the colour channels."""
    images = tf.convert_to_tensor(call.images, tf.float32)
    return tf.reduce_max(tf.abs(_gradients(call, images, call.objective)), axis=-1)


def integrated_gradients(call):
    """Integrated Gradients (Sundararajan et al., ICML 2017) as xplique's
    `IntegratedGradients`: the gradients at `steps` points of the straight
    path from a constant `baseline_value` image to x (both ends included),
    averaged by the trapezoid rule, times (x − baseline), averaged over the
    colour channels."""
    images = tf.convert_to_tensor(call.images, tf.float32)
    steps, baseline = call.options["steps"], float(call.options["baseline_value"])
    # Trapezoid weights of the `steps` points over [0, 1].
    weights = tf.concat([[0.5], tf.ones([steps - 2]), [0.5]], 0) / (steps - 1.0) \
        if steps > 1 else tf.ones([1])

    def body(k, total):
        alpha = tf.cast(k, tf.float32) / max(steps - 1, 1)
        point = baseline + alpha * (images - baseline)
        return k + 1, total + weights[k] * _gradients(call, point, call.objective)
    _, averaged = tf.while_loop(lambda k, _: k < steps, body,
                                (tf.constant(0), tf.zeros_like(images)))
    return tf.reduce_mean((images - baseline) * averaged, axis=-1)


def _anchors(length, size, stride):
    """Patch starts along one side, as xplique's `Occlusion`: the patches
    that fit, every `stride` pixels from 0 (the far edge may stay
    uncovered)."""
    return [i * stride for i in range(math.ceil((length - size + 1) / stride))]


def occlusion(call):
    """Occlusion (Zeiler & Fergus, ECCV 2014) as xplique's `Occlusion`: each
    `patch_size` square, every `patch_stride` pixels, is set to
    `occlusion_value`; a pixel's value is the sum of the score drops of the
    patches that cover it (summed, not averaged, as the reference)."""
    images = tf.convert_to_tensor(call.images, tf.float32)
    _, height, width, _ = images.shape
    size, stride = call.options["patch_size"], call.options["patch_stride"]
    value = float(call.options["occlusion_value"])
    rows, cols = _anchors(height, size, stride), _anchors(width, size, stride)
    # Patch k = (rows[k // len(cols)], cols[k % len(cols)]), as indicator
    # vectors along each side: mask_k = row_k ⊗ col_k.
    row_masks = tf.constant([[float(r <= y < r + size) for y in range(height)]
                             for r in rows for _ in cols])                      # (K, H)
    col_masks = tf.constant([[float(c <= x < c + size) for x in range(width)]
                             for _ in rows for c in cols])                      # (K, W)
    base = call.objective.score(call.explainer.forward(images)[1])

    def body(k, drops):
        mask = (row_masks[k][:, None] * col_masks[k][None, :])[None, :, :, None]
        occluded = images * (1.0 - mask) + value * mask
        score = call.objective.score(call.explainer.forward(occluded)[1])
        return k + 1, drops.write(k, base - score)
    _, drops = tf.while_loop(lambda k, _: k < len(row_masks), body,
                             (tf.constant(0), tf.TensorArray(tf.float32, len(row_masks))))
    return tf.einsum("kp,kh,kw->phw", drops.stack(), row_masks, col_masks)
