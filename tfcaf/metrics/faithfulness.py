"""Faithfulness of heatmaps (docs/method.md §7): deletion / insertion
(Petsiuk et al., RISE, BMVC 2018), Average Drop % / Increase in Confidence %
(Chattopadhay et al., WACV 2018) and the pointing game (Zhang et al., ECCV
2016), for classifiers and retrieval nets.

Images are raw RGB pixels, (N, H, W, 3) float32 in [0, 255], as tfcaf
models take them (their preprocessing is their first layer). `predict` maps
such a batch to (B, K) logits or (B, D) embeddings. The score of an image:

- classifiers: the softmax probability of the explained class;
- retrieval nets: the cosine similarity of its embedding to the embedding of
  the unperturbed image (1 on the image itself, 0 for an all-zero
  embedding).

"Removed" pixels take the substrate colour, the raw pixel value that the
model's preprocessing maps to zero (`substrate_colour`): the ImageNet mean
colour for "caffe"/"torch" backbones (ResNet50, VGG16, GoogLeNet, DenseNet),
mid-grey 127.5 for "tf" (MobileNetV2, Inception), black for "unit"
(tiny_resnet, the digits models) and "none". Products with a heatmap and the
blur's padding are taken relative to it, i.e. in the model's input space.

Each metric takes a `protocol`, the reference whose rules it follows
(defaults: the rules above; `faithfulness_protocols` holds the others):
deletion / insertion "rise" | "xplique", Average Drop / Increase
"grad-cam++" | "xplique" | "pytorch-grad-cam", the pointing game "tfcaf" |
"torchray" | "quantus". xplique's metrics score `model(x) · one_hot`: with
activation="softmax" that is tfcaf's classifier score, and with the
operator cos(model(x), t), t the unperturbed embeddings, its retrieval
score; its `baseline_mode` value is the substrate colour (the inputs xplique
sees being the model's input space). pytorch-grad-cam's
ClassifierOutputSoftmaxTarget and its embedding tutorial's
SimilarityToConceptTarget are the same two scores.
"""

import numpy as np
import tensorflow as tf

from tfcaf import graph
from tfcaf.errors import TfcafError
from tfcaf.metrics import faithfulness_protocols as protocols
from tfcaf.metrics import registry
from tfcaf.metrics.checks import check_heatmaps, check_images, check_int
from tfcaf.metrics.scores import batched_outputs, scoring, target_scores
from tfcaf.models.layers import ImagePreprocessing
from tfcaf.models.preprocessing import CAFFE_BGR_MEAN, CLIP_RGB_MEAN, TORCH_RGB_MEAN

BLUR_SIZE, BLUR_SIGMA = 11, 5.0
# Zhang et al.'s pointing-game tolerance in pixels (TorchRay's default),
# the registry's default.
POINTING_TOLERANCE = registry.metric("pointing_game").options["tolerance"]

_SUBSTRATES = {
    "caffe": tuple(reversed(CAFFE_BGR_MEAN)),
    "torch": tuple(255.0 * m for m in TORCH_RGB_MEAN),
    "tf": (127.5, 127.5, 127.5),
    "unit": (0.0, 0.0, 0.0),
    "none": (0.0, 0.0, 0.0),
    "clip": tuple(255.0 * m for m in CLIP_RGB_MEAN),
}


def substrate_colour(mode):
    """(3,) float32 RGB in [0, 255] that preprocessing `mode` maps to zero
    (for "none", whose backbone normalises inside, black)."""
    if mode not in _SUBSTRATES:
        raise TfcafError(f"unknown preprocessing mode {mode!r}; choose one of "
                         f"{', '.join(_SUBSTRATES)}")
    return np.array(_SUBSTRATES[mode], np.float32)


def model_substrate(model):
    """`substrate_colour` of the `ImagePreprocessing` layer of a tfcaf model."""
    modes = [layer.mode for layer, _ in graph.leaf_layers(model)
             if isinstance(layer, ImagePreprocessing)]
    if not modes:
        raise TfcafError(f"model '{model.name}' has no ImagePreprocessing layer: pass the "
                         "substrate colour (the input its preprocessing maps to zero)")
    return substrate_colour(modes[0])


def blur_kernel():
    """(11, 11) float64 insertion blur kernel of eclique/RISE's
    `evaluation.gkern(11, 5)`: a delta at the centre of an 11 × 11 grid
    through a Gaussian filter of σ 5 (scipy's `gaussian_filter`, reflecting
    at the grid's border, truncated at 4σ), not a sampled Gaussian: the
    reference's insertion curves need its kernel to be equal."""
    from scipy.ndimage import gaussian_filter
    delta = np.zeros((BLUR_SIZE, BLUR_SIZE))
    delta[BLUR_SIZE // 2, BLUR_SIZE // 2] = 1.0
    return gaussian_filter(delta, BLUR_SIGMA)


def blurred(images, substrate):
    """(N, H, W, 3) images blurred by `blur_kernel` per channel, padded
    with the substrate (zero padding in the model's input space, as the
    reference's `conv2d(..., padding=5)`)."""
    kernel = np.tile(blur_kernel()[:, :, None, None], (1, 1, 3, 1)).astype(np.float32)
    centred = tf.convert_to_tensor(images, tf.float32) - substrate
    return (tf.nn.depthwise_conv2d(centred, kernel, [1, 1, 1, 1], "SAME") + substrate).numpy()


def explanation_images(images, heatmaps, substrate):
    """E = image ⊙ heatmap in the model's input space: s + H · (x − s),
    (N, H, W, 3) from (N, H, W) heatmaps in [0, 1]."""
    images = np.asarray(images, np.float32)
    return substrate + np.asarray(heatmaps, np.float32)[..., None] * (images - substrate)


def checked_maps(images, heatmaps, batch_size, metric):
    """(images (N, H, W, 3) float32, heatmaps (N, H, W)) checked one per
    image at image size, and `batch_size` >= 1; `TfcafError` naming
    `metric` otherwise."""
    images = check_images(images, metric)
    heatmaps = check_heatmaps(heatmaps, metric, len(images), images.shape[1:3])
    check_int(batch_size, "batch_size", metric)
    return images, heatmaps


def step_counts(num_pixels, step):
    """Pixels switched after each step: 0, step, 2·step, ..., num_pixels."""
    steps = -(-num_pixels // step)  # ceil
    return np.minimum(np.arange(steps + 1) * step, num_pixels)


def salience_ranks(heatmaps):
    """(N, H, W) int32 rank of each pixel, 0 = most salient (ties: first in
    row-major order first)."""
    flat = np.asarray(heatmaps, np.float64).reshape(len(heatmaps), -1)
    order = np.argsort(-np.nan_to_num(flat, nan=-np.inf), axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(flat.shape[1])[None], axis=1)
    return ranks.reshape(np.shape(heatmaps)).astype(np.int32)


def _mixed_batch(start, end, ranks, counts, index, steps):
    """Images `index` of the flattened (image, step) grid: pixels of rank
    below the step's count come from `end`, the others from `start`."""
    image, step = index // steps, index % steps
    keep_end = tf.gather(ranks, image) < tf.gather(counts, step)[:, None, None]
    return tf.where(keep_end[..., None], tf.gather(end, image), tf.gather(start, image))


def batched_scores(predict, build, count, per_image, targets=None, references=None,
                   batch_size=64):
    """Scores of `count` · `per_image` perturbed images, `batch_size` per
    `predict` call.

    Args:
        build: flat indices (B,) int32 of the (image, j) grid, row-major ->
            (B, H, W, 3) the images to score.
        targets, references: per image, as `target_scores`.

    Returns:
        (count, per_image) scores.
    """
    scores = []
    for first in range(0, count * per_image, batch_size):
        index = tf.range(first, min(first + batch_size, count * per_image))
        outputs = predict(build(index))
        image = index // per_image
        chosen = None if targets is None else tf.gather(targets, image)
        refs = None if references is None else tf.gather(references, image)
        scores.append(target_scores(outputs, chosen, refs).numpy())
    return np.concatenate(scores).reshape(count, per_image)


def perturbation_curves(predict, start, end, heatmaps, targets=None, references=None,
                        step=None, batch_size=64, counts=None, ranks=None):
    """Score curves while pixels, most salient first, go from `start` to
    `end` images, `step` pixels at a time; every step of every image runs
    batched through `predict`.

    Args:
        predict: (B, H, W, 3) raw pixels -> (B, K) logits or (B, D).
        start, end: (N, H, W, 3) the images at the first and last step.
        heatmaps: (N, H, W) at image size.
        targets: (N,) explained classes (classifiers).
        references: (N, D) embeddings scored against (retrieval nets).
        step: pixels per step (default: the image width).
        batch_size: images per model call.
        counts: (S + 1,) pixels switched after each step, instead of
            `step_counts(H · W, step)`.
        ranks: (N, H, W) switching order (0 first) instead of
            `salience_ranks(heatmaps)`.

    Returns:
        (N, S + 1) scores, S = ceil(H · W / step) or len(counts) − 1.
    """
    count, height, width = np.shape(heatmaps)
    if counts is None:
        counts = step_counts(height * width, step or width)
    counts = tf.constant(counts, tf.int32)
    steps = int(counts.shape[0])
    ranks = tf.constant(salience_ranks(heatmaps) if ranks is None else ranks, tf.int32)
    start, end = tf.constant(start, tf.float32), tf.constant(end, tf.float32)
    return batched_scores(predict, lambda index: _mixed_batch(start, end, ranks, counts, index,
                                                               steps),
                          count, steps, targets, references, batch_size)


def auc(curves):
    """Trapezoid area under (N, S + 1) curves on x = 0, 1/S, ..., 1 -> (N,)."""
    curves = np.asarray(curves, np.float64)
    return (curves.sum(1) - (curves[:, 0] + curves[:, -1]) / 2) / (curves.shape[1] - 1)


def deletion_insertion(predict, images, heatmaps, targets=None, *, embedding=False,
                       substrate=(0.0, 0.0, 0.0), step=None, batch_size=64, protocol="rise",
                       steps=None, max_percentage_perturbed=None,
                       curves=("deletion", "insertion")):
    """Deletion and insertion (RISE): AUC of the score while the most salient
    pixels are replaced by the substrate (deletion, lower is better) or put
    back onto a start image (insertion, higher is better).

    Protocols:
        "rise" (default, eclique/RISE's CausalMetric, the paper's own
            code): `step` pixels per step (default the image width, RISE's
            224), ties in row-major order, NaN last, insertion from the
            image's `blurred` copy.
        "xplique" (xplique 2.0.2 Deletion / Insertion): `steps` steps
            (default 10; -1 = one pixel each) over the first
            floor(H · W · max_percentage_perturbed) pixels (default 1.0),
            counts `xplique_step_counts`; order `xplique_ranks`; insertion
            from the substrate (its baseline_mode), no blur.
        Both: AUC = trapezoids on evenly spaced x in [0, 1] (xplique's
        `mean(s[:-1] + s[1:]) / 2`); xplique reports the mean over images.

    Args:
        predict, step, batch_size: see `perturbation_curves`.
        images: (N, H, W, 3) raw pixels; heatmaps: (N, H, W) at image size.
        targets: (N,) explained classes (classifiers), or a
            `tfcaf.Similarity` (cosine similarity to its references, on
            any model: `scoring`).
        embedding: True for retrieval nets (score: cosine similarity to the
            unperturbed image's embedding).
        substrate: (3,) RGB colour of removed pixels (`model_substrate`).
        protocol: "rise" or "xplique".
        steps, max_percentage_perturbed: "xplique" only.
        curves: which of "deletion", "insertion" to compute.

    Returns:
        dict "deletion", "insertion" (N,) AUCs (those of `curves`), their
        (N, S + 1) curves "deletion_curve", "insertion_curve", and "counts"
        (S + 1,) the pixels switched after each step.
    """
    protocols.check_protocol(protocol, protocols.DELETION_PROTOCOLS, "deletion_insertion")
    xplique = protocol == "xplique"
    if (step is not None and xplique) or (not xplique and (steps, max_percentage_perturbed)
                                          != (None, None)):
        raise TfcafError("deletion_insertion: `step` is a 'rise' option, `steps` and "
                         "`max_percentage_perturbed` are 'xplique' options")
    images, heatmaps = checked_maps(images, heatmaps, batch_size, "deletion_insertion")
    if step is not None:
        check_int(step, "step", "deletion_insertion")
    substrate = np.asarray(substrate, np.float32)
    _, targets, references = scoring(predict, images, targets, embedding, batch_size)
    height, width = images.shape[1:3]
    if xplique:
        counts = protocols.xplique_step_counts(height * width, 10 if steps is None else steps,
                                               1.0 if max_percentage_perturbed is None
                                               else max_percentage_perturbed)
        ranks = protocols.xplique_ranks(heatmaps)
    else:
        counts, ranks = step_counts(height * width, step or width), None
    options = dict(targets=targets, references=references, batch_size=batch_size,
                   counts=counts, ranks=ranks)
    flat = np.broadcast_to(substrate, images.shape)
    result = {"counts": counts}
    for name in curves:
        start, end = (images, flat) if name == "deletion" else \
            (flat if xplique else blurred(images, substrate), images)
        result[f"{name}_curve"] = perturbation_curves(predict, start, end, heatmaps, **options)
        result[name] = auc(result[f"{name}_curve"])
    return result


def deletion(predict, images, heatmaps, targets=None, **options):
    """Deletion alone: `deletion_insertion`'s arguments and its "deletion",
    "deletion_curve" and "counts" (`tfcaf.metrics.deletion`)."""
    return deletion_insertion(predict, images, heatmaps, targets, curves=("deletion",),
                              **options)


def insertion(predict, images, heatmaps, targets=None, **options):
    """Insertion alone: `deletion_insertion`'s arguments and its "insertion",
    "insertion_curve" and "counts" (`tfcaf.metrics.insertion`)."""
    return deletion_insertion(predict, images, heatmaps, targets, curves=("insertion",),
                              **options)


def average_drop_increase(predict, images, heatmaps, targets=None, *, embedding=False,
                          substrate=(0.0, 0.0, 0.0), batch_size=64, protocol="grad-cam++"):
    """Average Drop % and Increase in Confidence %.

    With Y the score of the image and O that of the explanation image
    E = s + M · (x − s) (`explanation_images`, x ⊙ M in the model's input
    space), per protocol:
        "grad-cam++" (default, Chattopadhay et al.'s definition): M = the
            heatmap as given, drop = max(0, Y − O) / Y;
        "xplique" (AverageDropMetric / AverageIncreaseMetric): M =
            `xplique_mask` (|map| min-max scaled), drop = max(0, Y − O) /
            (Y + 1e-8);
        "pytorch-grad-cam" (DropInConfidence / IncreaseInConfidence): M =
            the heatmap as given, drop = max(0, Y − O), absolute (a
            probability difference, not relative to Y).
    Always increase = O > Y; AD = 100 · mean(drop) (lower is better), IC =
    100 · mean(increase) (higher is better). For retrieval nets Y is the
    cosine similarity of the image's embedding to itself (1 up to
    rounding). Other arguments as in `deletion_insertion`.

    Returns:
        dict "average_drop", "increase_in_confidence" in [0, 100] and the
        per-image "drop" (N,) and "increase" (N,) bool. A relative drop is
        in [0, 1] for probabilities, may exceed 1 for a cosine Y in (0, 1)
        and is NaN where Y ≤ 0 (undefined; left out of the mean).
    """
    protocols.check_protocol(protocol, protocols.AVERAGE_DROP_PROTOCOLS,
                             "average_drop_increase")
    images, heatmaps = checked_maps(images, heatmaps, batch_size, "average_drop_increase")
    substrate = np.asarray(substrate, np.float32)
    original, targets, references = scoring(predict, images, targets, embedding, batch_size)
    masks = protocols.xplique_mask(heatmaps) if protocol == "xplique" else heatmaps
    explained = explanation_images(images, masks, substrate)
    outputs = batched_outputs(predict, explained, batch_size)
    scores = target_scores(outputs, targets, references).numpy()
    loss = np.maximum(np.float32(0), original - scores)  # float32, as the references
    if protocol == "xplique":
        drop = loss / (original + np.float32(protocols.XPLIQUE_EPS))
    elif protocol == "pytorch-grad-cam":
        drop = loss
    else:
        drop = loss / np.maximum(original, np.float32(1e-12))
    if protocol != "pytorch-grad-cam":
        # A drop relative to a cosine Y ≤ 0 (a Similarity target) means
        # nothing: undefined, not a huge number.
        drop = np.where(original > 0, drop, np.float32(np.nan))
    increase = scores > original
    return {"average_drop": float(100 * np.nanmean(drop)) if np.isfinite(drop).any()
            else float("nan"),
            "increase_in_confidence": float(100 * increase.mean()),
            "drop": drop, "increase": increase}


def pointing_game(heatmaps, gt_boxes=None, tolerance=POINTING_TOLERANCE, protocol="tfcaf",
                  gt_masks=None):
    """Pointing game: the hit rate of the heatmaps' maxima on the objects.

    Protocols:
        "tfcaf" (default): a hit when the maximum (first in row-major
            order) lies inside a box enlarged by `tolerance` pixels on every
            side (a square: up to `tolerance` px away along an axis and
            diagonally); a constant or NaN map points nowhere (a miss).
        "torchray" (TorchRay's PointingGame, Zhang et al.'s tolerance 15):
            the first arg-max (constant maps point at (0, 0), NaN counts as
            the maximum) hits when a mask pixel is at Euclidean distance
            < `tolerance` (an open disc: up to tolerance − 1 px along an
            axis, less diagonally; tolerance 0 never hits).
        "quantus" (Quantus' PointingGame): a hit when any pixel equal to the
            maximum lies inside the mask; `tolerance` is not used; a
            constant map hits any non-empty mask.
    Masks are `gt_masks`, or built from the boxes (`box_masks`, the pixels
    x0 <= x < x1, y0 <= y < y1). An image with no box or an empty mask is a
    miss (Quantus gives it NaN). The rate is over images (TorchRay's
    `accuracy` averages per-class rates).

    Args:
        heatmaps: (N, H, W) in the frame of the boxes.
        gt_boxes: N arrays (M_i, 4) (x0, y0, x1, y1), exclusive maxima;
            rows with a negative coordinate are padding.
        tolerance: pixels ("tfcaf", "torchray").
        protocol: "tfcaf", "torchray" or "quantus".
        gt_masks: (N, H, W) bool object masks ("torchray", "quantus"),
            instead of the boxes.

    Returns:
        dict "pointing_game" (hit rate in [0, 1]) and "hits" (N,) bool.
    """
    protocols.check_protocol(protocol, protocols.POINTING_PROTOCOLS, "pointing_game")
    if (gt_masks is None) == (gt_boxes is None) or (protocol == "tfcaf" and gt_boxes is None):
        raise TfcafError("pointing_game: pass gt_boxes, or gt_masks (protocols 'torchray' and "
                         "'quantus' only)")
    if protocol == "tfcaf":
        hits = np.array([_box_hit(np.asarray(h, np.float64), b, tolerance)
                         for h, b in zip(heatmaps, gt_boxes)], bool)
    else:
        heatmaps = np.asarray(heatmaps)
        masks = (protocols.box_masks(gt_boxes, heatmaps.shape[1:]) if gt_masks is None
                 else np.asarray(gt_masks, bool))
        if masks.shape != heatmaps.shape:
            raise TfcafError(f"pointing_game: gt_masks {masks.shape} must match the heatmaps "
                             f"{heatmaps.shape}")
        hits = np.array([protocols.torchray_hit(h, m, tolerance) if protocol == "torchray"
                         else protocols.quantus_hit(h, m) for h, m in zip(heatmaps, masks)], bool)
    return {"pointing_game": float(hits.mean()) if len(hits) else 0.0, "hits": hits}


def _box_hit(heatmap, boxes, tolerance):
    """tfcaf's rule for one map and its (M, 4) boxes."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    boxes = boxes[(boxes >= 0).all(axis=1)]
    if not np.isfinite(heatmap).all() or heatmap.max() == heatmap.min() or not len(boxes):
        return False
    y, x = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    return bool(((boxes[:, 0] - tolerance <= x) & (x < boxes[:, 2] + tolerance) &
                 (boxes[:, 1] - tolerance <= y) & (y < boxes[:, 3] + tolerance)).any())
