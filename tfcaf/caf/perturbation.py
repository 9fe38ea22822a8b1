"""Perturbation CAMs, as jacobgil/pytorch-grad-cam computes them
(docs/method.md §2): Score-CAM (also as tf-keras-vis, `variant`, with its
`max_N`) and Ablation-CAM.

Both score C perturbed copies of each problem, one per channel of the
feature maps A (P, h, w, C), `batch_size` channels at a time (the
reference's option of that name), in a `tf.map_fn` over channel chunks so
that a graph holds one chunk's pass whatever C is (ResNet50: 2,048).
Ablation-CAM perturbs A and runs only the head; Score-CAM's masks act on
the input and need the whole model. Each returns (P, h, w) float32 raw
maps `ReLU(Σ_c w_c A_c)`. Graph-safe.
"""

import tensorflow as tf

# pytorch-grad-cam's `AblationLayer`: a channel is set to 0 where the
# activations' minimum is 0 (after a ReLU), else far below their minimum.
ABLATION_OFFSET = 1e7
# Score-CAM's min-max normalisation guard of the masks: pytorch-grad-cam's,
# and tf-keras-vis's (Keras' `epsilon()`).
SCORECAM_EPSILON = {"pytorch-grad-cam": 1e-8, "tf-keras-vis": 1e-7}


def _channel_scores(score_chunk, channels, batch_size):
    """(P, C) scores, `score_chunk(channels (batch_size,) int32) -> (P,
    batch_size)` called on chunks of the C channels (the last chunk is
    padded with repeats of channel C − 1 and trimmed)."""
    starts = tf.range(0, channels, batch_size)

    def chunk(start):
        return score_chunk(tf.minimum(start + tf.range(batch_size), channels - 1))
    scores = tf.map_fn(chunk, starts, fn_output_signature=tf.float32)   # (n, P, bs)
    scores = tf.reshape(tf.transpose(scores, (1, 0, 2)), (tf.shape(scores)[1], -1))
    return scores[:, :channels]


def _weighted_map(feature_maps, weights):
    return tf.nn.relu(tf.einsum("bhwc,bc->bhw", feature_maps, weights))


def top_channels(feature_maps, max_n):
    """A's `max_n` channels of largest spatial standard deviation, per
    problem ((P, h, w, max_n), largest first; all of A when `max_n` is 0
    or not below C): tf-keras-vis's `max_N` (Faster Score-CAM)."""
    if not 0 < max_n < feature_maps.shape[-1]:
        return feature_maps
    spread = tf.math.reduce_std(feature_maps, axis=[1, 2])                # (P, C)
    kept = tf.math.top_k(spread, max_n).indices
    return tf.gather(feature_maps, kept, axis=-1, batch_dims=1)


def scorecam(call):
    """Score-CAM (Wang et al., CVPRW 2020): each channel of A, upsampled
    to the input (bilinear, corners aligned) and min-max normalised, masks
    the image; the target's scores s_c of the C masked images weight the
    channels. `variant` "pytorch-grad-cam" (its `ScoreCAM`, the default):
    s_c on the raw output (logits), w = softmax_c(s); "tf-keras-vis" (its
    `Scorecam`): s_c on softmax(output), w = s as it is, masks' guard 1e-7.
    Neither subtracts the paper's baseline score. `max_N` > 0 keeps each
    problem's `max_N` channels of largest spatial spread
    (`top_channels`; tf-keras-vis takes the union of them over its batch).

    Args:
        call: `methods.MethodCall` (images (P, H, W, 3), options
            {"batch_size": channels scored per pass and problem, "max_N",
            "variant"}).
    """
    variant, images = call.options["variant"], call.images
    a = top_channels(call.feature_maps, call.options["max_N"])
    channels, size = a.shape[-1], images.shape[1:3]
    masks = tf.compat.v1.image.resize_bilinear(a, size, align_corners=True)   # (P, H, W, C)
    low = tf.reduce_min(masks, axis=[1, 2], keepdims=True)
    high = tf.reduce_max(masks, axis=[1, 2], keepdims=True)
    masks = (masks - low) / (high - low + SCORECAM_EPSILON[variant])
    batch_size = call.options["batch_size"]
    goal = call.objective.repeated(batch_size)

    def score_chunk(chunk):
        chunk_masks = tf.transpose(tf.gather(masks, chunk, axis=-1), (0, 3, 1, 2))
        masked = images[:, None] * chunk_masks[..., None]       # (P, bs, H, W, 3)
        outputs = call.explainer.forward(tf.reshape(masked, (-1,) + tuple(images.shape[1:])))[1]
        if variant == "tf-keras-vis":
            outputs = tf.nn.softmax(outputs, axis=-1)
        return tf.reshape(goal.score(outputs), (-1, batch_size))
    scores = _channel_scores(score_chunk, channels, batch_size)
    return _weighted_map(a, scores if variant == "tf-keras-vis" else
                         tf.nn.softmax(scores, axis=-1))


def ablationcam(call):
    """Ablation-CAM (Desai & Ramaswamy, WACV 2020) as pytorch-grad-cam's
    `AblationCAM`: y_c is the target's score with channel c of A ablated
    (set to 0, or to min(A) − 1e7 where min(A) < 0), w_c = (y − y_c) / y.

    Args:
        call: `methods.MethodCall` (options {"batch_size"}: channels
            ablated per pass and problem).
    """
    a = call.feature_maps
    _, h, w, channels = a.shape
    head = call.head()
    original = call.objective.score(head(a, training=False))             # (P,)
    low = tf.reduce_min(a, axis=[1, 2, 3])
    value = tf.where(low == 0.0, 0.0, low - ABLATION_OFFSET)[:, None, None, None, None]
    batch_size = call.options["batch_size"]
    goal = call.objective.repeated(batch_size)

    def score_chunk(chunk):
        ablate = tf.one_hot(chunk, channels)[None, :, None, None, :]        # (1, bs, 1, 1, C)
        ablated = a[:, None] * (1.0 - ablate) + value * ablate           # (P, bs, h, w, C)
        outputs = head(tf.reshape(ablated, (-1, h, w, channels)), training=False)
        return tf.reshape(goal.score(outputs), (-1, batch_size))
    scores = _channel_scores(score_chunk, channels, batch_size)
    return _weighted_map(a, (original[:, None] - scores) / original[:, None])
