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
"""

import numpy as np
import tensorflow as tf

from tfcaf import graph
from tfcaf.errors import TfcafError
from tfcaf.models.layers import ImagePreprocessing
from tfcaf.models.preprocessing import CAFFE_BGR_MEAN, TORCH_RGB_MEAN

BLUR_SIZE, BLUR_SIGMA = 11, 5.0
# Zhang et al.'s pointing-game tolerance in pixels (TorchRay's default).
POINTING_TOLERANCE = 15

_SUBSTRATES = {
    "caffe": tuple(reversed(CAFFE_BGR_MEAN)),
    "torch": tuple(255.0 * m for m in TORCH_RGB_MEAN),
    "tf": (127.5, 127.5, 127.5),
    "unit": (0.0, 0.0, 0.0),
    "none": (0.0, 0.0, 0.0),
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


def target_scores(outputs, targets, references):
    """(B,) softmax probability of `targets` (classifiers, references None)
    or cosine similarity to `references` (B, D) (retrieval nets)."""
    outputs = tf.cast(outputs, tf.float32)
    if references is None:
        probabilities = tf.nn.softmax(outputs, axis=-1)
        return tf.gather(probabilities, targets, batch_dims=1)
    return tf.reduce_sum(tf.math.l2_normalize(outputs, -1) *
                         tf.math.l2_normalize(references, -1), -1)


def image_scores(predict, images, targets=None, embedding=False, batch_size=64):
    """Scores (N,) of unperturbed images and the reference embeddings
    (N, D) (None for classifiers)."""
    outputs = np.concatenate([np.asarray(predict(images[i:i + batch_size]))
                              for i in range(0, len(images), batch_size)])
    references = outputs if embedding else None
    return target_scores(outputs, targets, references).numpy(), references


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


def perturbation_curves(predict, start, end, heatmaps, targets=None, references=None,
                        step=None, batch_size=64):
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

    Returns:
        (N, S + 1) scores, S = ceil(H · W / step).
    """
    count, height, width = np.shape(heatmaps)
    counts = tf.constant(step_counts(height * width, step or width), tf.int32)
    steps = int(counts.shape[0])
    ranks = tf.constant(salience_ranks(heatmaps))
    start, end = tf.constant(start, tf.float32), tf.constant(end, tf.float32)
    scores = []
    for first in range(0, count * steps, batch_size):
        index = tf.range(first, min(first + batch_size, count * steps))
        outputs = predict(_mixed_batch(start, end, ranks, counts, index, steps))
        image = index // steps
        chosen = None if targets is None else tf.gather(targets, image)
        refs = None if references is None else tf.gather(references, image)
        scores.append(target_scores(outputs, chosen, refs).numpy())
    return np.concatenate(scores).reshape(count, steps)


def auc(curves):
    """Trapezoid area under (N, S + 1) curves on x = 0, 1/S, ..., 1 -> (N,)."""
    curves = np.asarray(curves, np.float64)
    return (curves.sum(1) - (curves[:, 0] + curves[:, -1]) / 2) / (curves.shape[1] - 1)


def deletion_insertion(predict, images, heatmaps, targets=None, *, embedding=False,
                       substrate=(0.0, 0.0, 0.0), step=None, batch_size=64):
    """Deletion and insertion (RISE): AUC of the score while the most salient
    pixels are replaced by the substrate (deletion, lower is better) or put
    back onto a blurred copy (insertion, higher is better).

    Args:
        predict, step, batch_size: see `perturbation_curves`.
        images: (N, H, W, 3) raw pixels; heatmaps: (N, H, W) at image size.
        targets: (N,) explained classes (classifiers; ignored for
            retrieval nets).
        embedding: True for retrieval nets (score: cosine similarity to the
            unperturbed image's embedding).
        substrate: (3,) RGB colour of removed pixels (`model_substrate`).

    Returns:
        dict "deletion", "insertion" (N,) AUCs and their (N, S + 1) curves
        "deletion_curve", "insertion_curve".
    """
    images = np.asarray(images, np.float32)
    substrate = np.asarray(substrate, np.float32)
    targets = None if embedding else tf.constant(np.asarray(targets), tf.int32)
    _, references = image_scores(predict, images, targets, embedding, batch_size)
    options = dict(targets=targets, references=references, step=step, batch_size=batch_size)
    deletion = perturbation_curves(predict, images, np.broadcast_to(substrate, images.shape),
                                   heatmaps, **options)
    insertion = perturbation_curves(predict, blurred(images, substrate), images, heatmaps,
                                    **options)
    return {"deletion": auc(deletion), "insertion": auc(insertion),
            "deletion_curve": deletion, "insertion_curve": insertion}


def average_drop_increase(predict, images, heatmaps, targets=None, *, embedding=False,
                          substrate=(0.0, 0.0, 0.0), batch_size=64):
    """Average Drop % and Increase in Confidence % (Grad-CAM++).

    With Y the score of the image and O that of the explanation image
    E = image ⊙ heatmap (`explanation_images`): AD = mean(max(0, Y − O) / Y)
    · 100 (lower is better), IC = mean(O > Y) · 100 (higher is better).
    For retrieval nets Y = 1 (the cosine similarity of an embedding to
    itself). Arguments as in `deletion_insertion`.

    Returns:
        dict "average_drop", "increase_in_confidence" in [0, 100] and the
        per-image "drop" (N,) in [0, 1] and "increase" (N,) bool.
    """
    images = np.asarray(images, np.float32)
    substrate = np.asarray(substrate, np.float32)
    targets = None if embedding else tf.constant(np.asarray(targets), tf.int32)
    original, references = image_scores(predict, images, targets, embedding, batch_size)
    explained = explanation_images(images, heatmaps, substrate)
    outputs = np.concatenate([np.asarray(predict(explained[i:i + batch_size]))
                              for i in range(0, len(images), batch_size)])
    scores = target_scores(outputs, targets, references).numpy()
    drop = np.maximum(0.0, original - scores) / np.maximum(original, 1e-12)
    increase = scores > original
    return {"average_drop": float(100 * drop.mean()),
            "increase_in_confidence": float(100 * increase.mean()),
            "drop": drop, "increase": increase}


def pointing_game(heatmaps, gt_boxes, tolerance=POINTING_TOLERANCE):
    """Pointing game: a hit when the heatmap's maximum (first in row-major
    order) lies inside a ground-truth box enlarged by `tolerance` pixels; a
    constant or NaN map points nowhere (a miss).

    Args:
        heatmaps: (N, H, W) in the frame of the boxes.
        gt_boxes: N arrays (M_i, 4) (x0, y0, x1, y1), exclusive maxima;
            rows with a negative coordinate are padding.
        tolerance: pixels added on every side.

    Returns:
        dict "pointing_game" (hit rate in [0, 1]) and "hits" (N,) bool.
    """
    hits = []
    for heatmap, boxes in zip(heatmaps, gt_boxes):
        heatmap = np.asarray(heatmap, np.float64)
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        boxes = boxes[(boxes >= 0).all(axis=1)]
        if not np.isfinite(heatmap).all() or heatmap.max() == heatmap.min() or not len(boxes):
            hits.append(False)
            continue
        y, x = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
        inside = ((boxes[:, 0] - tolerance <= x) & (x < boxes[:, 2] + tolerance) &
                  (boxes[:, 1] - tolerance <= y) & (y < boxes[:, 3] + tolerance))
        hits.append(bool(inside.any()))
    hits = np.array(hits, bool)
    return {"pointing_game": float(hits.mean()) if len(hits) else 0.0, "hits": hits}
