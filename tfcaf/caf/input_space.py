"""Input-space attributions (docs/method.md §2): Saliency, SmoothGrad,
Integrated Gradients and Occlusion as xplique 2.0.2 computes them, and RISE
as eclique/RISE does, by default; options give captum's, tf-keras-vis's and
xplique's forms where they differ (IG's `approximation_method`,
SmoothGrad's `abs`, `reducer`, RISE's `variant`, `mask_value`).

Each takes a `methods.MethodCall` and returns (P, H, W) float32 maps at
the input's size (the colour channels reduced by `reducer` where the
method has one, with xplique's default). The score
is the objective's (`targets.Objective.score`) on the whole model's
output: the logits (a final softmax left out), or the embedding before a
final L2 normalisation for the `OUTPUT` kind (whose score has no gradient
through it). Graph-safe; the loops over steps and patches are
`tf.while_loop`s, so a graph holds one pass of the P images.
"""

import math

import numpy as np
import tensorflow as tf


# xplique's `Rise.EPSILON`: its maps divide by each pixel's mask sum + 1e-4.
XPLIQUE_RISE_EPSILON = 1e-4


def _gradients(call, images, goal):
    """(P, H, W, C) ∂score/∂images of the P problems of `goal`."""
    split = call.explainer.split
    with tf.GradientTape() as tape:
        tape.watch(images)
        features = tf.cast(split.features(images, training=False), tf.float32)
        total = tf.reduce_sum(goal.score(call.explainer.gradient_head(features,
                                                                      training=False)))
    return tape.gradient(total, images)


def _reduce(maps, reducer):
    """(P, H, W) of (P, H, W, C) attributions, the colours reduced by xplique's
    `reducer` ("mean", "max", "min" or "sum")."""
    return getattr(tf, f"reduce_{reducer}")(maps, axis=-1)


def saliency(call):
    """Saliency (Simonyan et al., 2014) as xplique's `Saliency`: |∂score/∂x|
    reduced over the colour channels by `reducer` (xplique's default and
    tf-keras-vis's: "max")."""
    images = tf.convert_to_tensor(call.images, tf.float32)
    return _reduce(tf.abs(_gradients(call, images, call.objective)), call.options["reducer"])


def path_rule(approximation_method, steps):
    """(alphas, weights) float64: the `steps` points of [0, 1] where
    Integrated Gradients takes the gradients, and their weights.

    "trapezoid" is the trapezoid rule on `steps` evenly spaced points, both
    ends included (xplique's `IntegratedGradients`). The others are
    captum's `method=` values, with captum's own numbers
    (`approximation_methods`): "gausslegendre" (captum's default) the
    Gauss-Legendre nodes and weights on [0, 1]; "riemann_*" the weight 1/n
    at every point, halved at both ends for "riemann_trapezoid" (whose
    points are 1/(n − 1) apart, so its weights sum to (n − 1)/n, not 1).
    """
    n = steps
    if approximation_method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n)
        return 0.5 * (1.0 + nodes), 0.5 * weights
    if approximation_method == "trapezoid":
        if n == 1:  # no interval: linspace(0, 1, 1) = [0], the baseline, weight 1
            return np.zeros(1), np.ones(1)
        weights = np.full(n, 1.0 / (n - 1))
        weights[[0, -1]] /= 2.0
        return np.linspace(0.0, 1.0, n), weights
    weights = np.full(n, 1.0 / n)
    if approximation_method == "riemann_trapezoid":
        weights[[0, -1]] /= 2.0
    first, last = {"riemann_trapezoid": (0.0, 1.0), "riemann_left": (0.0, 1.0 - 1.0 / n),
                   "riemann_middle": (0.5 / n, 1.0 - 0.5 / n),
                   "riemann_right": (1.0 / n, 1.0)}[approximation_method]
    return np.linspace(first, last, n), weights


def integrated_gradients(call):
    """Integrated Gradients (Sundararajan et al., ICML 2017) as xplique's
    `IntegratedGradients`: the gradients at the points α_k of the straight
    path from a constant `baseline_value` image to x, weighted by w_k
    (`path_rule(approximation_method, steps)`: xplique's trapezoid rule by
    default, or one of captum's), summed, times (x − baseline), reduced
    over the colour channels by `reducer` (xplique's default: "mean")."""
    images = tf.convert_to_tensor(call.images, tf.float32)
    baseline = float(call.options["baseline_value"])
    alphas, weights = (tf.constant(v, tf.float32) for v in path_rule(
        call.options["approximation_method"], call.options["steps"]))

    def body(k, total):
        point = baseline + alphas[k] * (images - baseline)
        return k + 1, total + weights[k] * _gradients(call, point, call.objective)
    _, summed = tf.while_loop(lambda k, _: k < len(alphas), body,
                              (tf.constant(0), tf.zeros_like(images)))
    return _reduce((images - baseline) * summed, call.options["reducer"])


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


def smoothgrad(call):
    """SmoothGrad (Smilkov et al., 2017) as xplique's `SmoothGrad`: the
    gradients at `nb_samples` noisy copies x + ε, ε ~ N(0, noise²) in the
    images' units, averaged, then reduced over the colour channels by
    `reducer` (xplique's default: "mean"). With `abs`, |gradient| is
    averaged instead (captum's NoiseTunnel over Saliency, tf-keras-vis's
    SmoothGrad; with reducer "max", tf-keras-vis's map). `noise_draws`
    gives ε: (P, nb_samples, H, W, C), or (nb_samples, H, W, C) for every
    problem; default one draw from `seed` for every problem, so that an
    image's map does not depend on the batch it is explained in."""
    images = tf.convert_to_tensor(call.images, tf.float32)
    draws = call.options["noise_draws"]
    if draws is None:
        draws = call.options["noise"] * tf.random.stateless_normal(
            (call.options["nb_samples"],) + tuple(images.shape[1:]),
            seed=[call.options["seed"], 0])
    draws = tf.convert_to_tensor(draws, tf.float32)
    shared = draws.shape.rank == images.shape.rank
    count = tf.shape(draws)[0 if shared else 1]
    modify = tf.abs if call.options["abs"] else tf.identity

    def body(k, total):
        noise = draws[k][None] if shared else draws[:, k]
        return k + 1, total + modify(_gradients(call, images + noise, call.objective))
    _, summed = tf.while_loop(lambda k, _: k < count, body,
                              (tf.constant(0), tf.zeros_like(images)))
    return _reduce(summed / tf.cast(count, tf.float32), call.options["reducer"])


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
    """RISE (Petsiuk et al., BMVC 2018): the target's scores s_n of the
    image masked by each of N masks M_n (M x + (1 − M) `mask_value`) weight
    the masks. `variant` "eclique" (eclique/RISE's `RISE`, the paper's
    estimator): Σ_n s_n M_n / (N · p1); "xplique" (xplique's `Rise`):
    Σ_n s_n M_n / (Σ_n M_n + 1e-4), each pixel's own mask sum.

    `masks` gives the M_n in [0, 1]: (N, H, W) for every problem or
    (P, N, H, W) one set per problem (xplique crops its masks per image);
    default `rise_masks(nb_samples, ..., grid_size,
    preservation_probability, seed)`. Scores are the logits (a final
    softmax left out; RISE's paper weights probabilities: see
    docs/method.md §2)."""
    images = tf.convert_to_tensor(call.images, tf.float32)
    _, height, width, _ = images.shape
    probability = call.options["preservation_probability"]
    value = float(call.options["mask_value"])
    masks = call.options["masks"]
    if masks is None:
        masks = rise_masks(call.options["nb_samples"], height, width,
                           call.options["grid_size"], probability, call.options["seed"])
    masks = tf.convert_to_tensor(masks, tf.float32)
    if masks.shape.rank == 3:
        masks = masks[None]                                   # (1 or P, N, H, W)

    def body(n, total, coverage):
        mask = masks[:, n]
        masked = images * mask[..., None] + (1.0 - mask[..., None]) * value
        score = call.objective.score(call.explainer.forward(masked)[1])
        return n + 1, total + score[:, None, None] * mask, coverage + mask
    _, summed, coverage = tf.while_loop(
        lambda n, *_: n < tf.shape(masks)[1], body,
        (tf.constant(0), tf.zeros(tf.shape(images)[:3]), tf.zeros_like(masks[:, 0])))
    if call.options["variant"] == "xplique":
        return summed / (coverage + XPLIQUE_RISE_EPSILON)
    return summed / (tf.cast(tf.shape(masks)[1], tf.float32) * probability)
