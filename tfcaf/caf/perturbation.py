"""Perturbation CAMs, as jacobgil/pytorch-grad-cam computes them
(docs/method.md §2): Score-CAM and Ablation-CAM.

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
# pytorch-grad-cam's Score-CAM: min-max normalisation guard of the masks.
SCORECAM_EPSILON = 1e-8


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


def scorecam(call):
    """Score-CAM (Wang et al., CVPRW 2020) as pytorch-grad-cam's `ScoreCAM`:
    each channel of A, upsampled to the input (bilinear, corners aligned)
    and min-max normalised, masks the image; the target's scores s_c of the
    C masked images give w = softmax_c(s) (no baseline score, no class
    softmax: as the reference).

    Args:
        call: `methods.MethodCall` (images (P, H, W, 3), options
            {"batch_size"}: channels scored per pass and problem).
    """
    a, images = call.feature_maps, call.images
    channels, size = a.shape[-1], images.shape[1:3]
    masks = tf.compat.v1.image.resize_bilinear(a, size, align_corners=True)   # (P, H, W, C)
    low = tf.reduce_min(masks, axis=[1, 2], keepdims=True)
    high = tf.reduce_max(masks, axis=[1, 2], keepdims=True)
    masks = (masks - low) / (high - low + SCORECAM_EPSILON)
    batch_size = call.options["batch_size"]
    goal = call.objective.repeated(batch_size)

    def score_chunk(chunk):
        chunk_masks = tf.transpose(tf.gather(masks, chunk, axis=-1), (0, 3, 1, 2))
        masked = images[:, None] * chunk_masks[..., None]       # (P, bs, H, W, 3)
        outputs = call.explainer.forward(tf.reshape(masked, (-1,) + tuple(images.shape[1:])))[1]
        return tf.reshape(goal.score(outputs), (-1, batch_size))
    scores = _channel_scores(score_chunk, channels, batch_size)
    return _weighted_map(a, tf.nn.softmax(scores, axis=-1))


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
    head = call.explainer.split.head
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
