"""Input-space attributions (docs/method.md §2): Saliency, SmoothGrad,
Integrated Gradients and Occlusion as xplique 2.0.2 computes them, and RISE
as eclique/RISE does.

Each takes a `methods.MethodCall` and returns (P, H, W) float32 maps at
the input's size (the channels reduced as the reference does). The score
is the objective's (`targets.Objective.score`) on the whole model's
output: the logits (a final softmax left out), or the embedding before a
final L2 normalisation for the `OUTPUT` kind (whose score has no gradient
through it). Graph-safe; the loops over steps and patches are
`tf.while_loop`s, so a graph holds one pass of the P images.
"""

import math

import numpy as np
import tensorflow as tf

from tfcaf.errors import TfcafError


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


def check_arrays(method, options, image_shape):
    """`TfcafError` unless the array options of `method` fit images of
    shape (P, H, W, C) `image_shape` (run eagerly, before tracing: the
    traced graph sees shapes only in part)."""
    image = tuple(image_shape[1:])
    if method == "rise" and options.get("masks") is not None:
        shape = tuple(np.shape(options["masks"]))
        if len(shape) != 3 or shape[1:] != image[:2]:
            raise TfcafError(f"rise: masks must be (N, {image[0]}, {image[1]}) for these "
                             f"images; got {shape}")
    if method == "smoothgrad" and options.get("noise_draws") is not None:
        shape = tuple(np.shape(options["noise_draws"]))
        if len(shape) not in (4, 5) or shape[-3:] != image or \
                (len(shape) == 5 and shape[0] != image_shape[0]):
            raise TfcafError(f"smoothgrad: noise_draws must be (P={image_shape[0]}, N) + "
                             f"{image} or (N,) + {image}; got {shape}")


def smoothgrad(call):
    """SmoothGrad (Smilkov et al., 2017) as xplique's `SmoothGrad`: the
    gradients at `nb_samples` noisy copies x + ε, ε ~ N(0, noise²) in the
    images' units, averaged (no absolute value), then averaged over the
    colour channels. `noise_draws` gives ε: (P, nb_samples, H, W, C), or
    (nb_samples, H, W, C) for every problem; default drawn from `seed`."""
    images = tf.convert_to_tensor(call.images, tf.float32)
    count = call.options["nb_samples"]
    draws = call.options["noise_draws"]
    if draws is None:
        draws = call.options["noise"] * tf.random.stateless_normal(
            (tf.shape(images)[0], count) + tuple(images.shape[1:]),
            seed=[call.options["seed"], 0])
    else:
        draws = tf.convert_to_tensor(draws, tf.float32)
        if draws.shape.rank == images.shape.rank:
            draws = tf.repeat(draws[None], tf.shape(images)[0], axis=0)


    def body(k, total):
        return k + 1, total + _gradients(call, images + draws[:, k], call.objective)
    _, summed = tf.while_loop(lambda k, _: k < tf.shape(draws)[1], body,
                              (tf.constant(0), tf.zeros_like(images)))
    return tf.reduce_mean(summed / tf.cast(tf.shape(draws)[1], tf.float32), axis=-1)


def rise_masks(count, height, width, grid_size, probability, seed):
    """(count, H, W) float32 RISE masks as eclique/RISE draws them: a
    `grid_size`² grid of cells kept with `probability`, upsampled
    bilinearly to (grid_size + 1) cells and cropped at a random shift of
    less than a cell. (eclique resizes with skimage, reflecting at the
    border; tf.image.resize replicates it: masks drawn here are RISE's
    kind, not its exact numbers; pass its masks for those.)"""
    cell_h, cell_w = math.ceil(height / grid_size), math.ceil(width / grid_size)
    grid = tf.cast(tf.random.stateless_uniform((count, grid_size, grid_size, 1),
                                               seed=[seed, 1]) < probability, tf.float32)
    up = tf.image.resize(grid, ((grid_size + 1) * cell_h, (grid_size + 1) * cell_w))[..., 0]
    shifts = tf.random.stateless_uniform((count, 2), seed=[seed, 2], maxval=1.0)
    dy = tf.cast(shifts[:, 0] * cell_h, tf.int32)
    dx = tf.cast(shifts[:, 1] * cell_w, tf.int32)
    rows = dy[:, None] + tf.range(height)[None]
    cols = dx[:, None] + tf.range(width)[None]
    return tf.gather(tf.gather(up, rows, batch_dims=1), cols, axis=2, batch_dims=1)


def rise(call):
    """RISE (Petsiuk et al., BMVC 2018) as eclique/RISE's `RISE`: the
    target's scores s_n of the image times each of N masks M_n weight the
    masks, Σ_n s_n M_n / (N · p1). `masks` gives them ((N, H, W) in
    [0, 1]); default `rise_masks(nb_samples, ..., grid_size,
    preservation_probability, seed)`. Scores are the logits (a final
    softmax left out; RISE's paper weights probabilities: explain a model
    without the softmax layer removed to get those... see docs/method.md
    §2)."""
    images = tf.convert_to_tensor(call.images, tf.float32)
    _, height, width, _ = images.shape
    probability = call.options["preservation_probability"]
    masks = call.options["masks"]
    if masks is None:
        masks = rise_masks(call.options["nb_samples"], height, width,
                           call.options["grid_size"], probability, call.options["seed"])
    masks = tf.convert_to_tensor(masks, tf.float32)

    def body(n, total):
        score = call.objective.score(call.explainer.forward(images * masks[n][None, :, :, None])[1])
        return n + 1, total + score[:, None, None] * masks[n][None]
    _, summed = tf.while_loop(lambda n, _: n < tf.shape(masks)[0], body,
                              (tf.constant(0), tf.zeros(tf.shape(images)[:3])))
    return summed / (tf.cast(tf.shape(masks)[0], tf.float32) * probability)
