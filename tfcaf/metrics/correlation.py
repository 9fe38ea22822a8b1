"""Faithfulness Correlation (Bhatt et al., IJCAI 2020) as Quantus 0.6's
`FaithfulnessCorrelation` computes it, for classifiers and retrieval nets.

In each of `nb_runs` runs a random subset of `subset_size` input values of
an image (single colour values of pixels: Quantus broadcasts the heatmap
over the channels and draws among all H · W · 3 values) takes the substrate
colour; the metric is, per image, the Pearson correlation over the runs
between the sum of the attributions of the subset (each pixel's attribution
counted once per channel drawn) and the drop of the score. Higher is more
faithful; NaN when either varies not at all (e.g. a constant heatmap).

Scores follow tfcaf.metrics.faithfulness: images (N, H, W, 3) raw pixels as
the model takes them, `predict` a batch -> (B, K) logits or (B, D)
embeddings, removed values the `substrate` (Quantus's `perturb_baseline`
given as a number; its default "black" is each image's minimum value).
"""

import numpy as np

from tfcaf.caf.targets import Similarity
from tfcaf.errors import TfcafError
from tfcaf.metrics.checks import check_heatmaps, check_images, check_int, check_targets
from tfcaf.metrics.map_complexity import quantus_preprocess
from tfcaf.metrics.scores import batched_outputs, similarity_references, target_scores

NAME = "faithfulness_correlation"


def _check_subsets(subsets, shape, features):
    """(nb_runs, N, subset_size) int64 of injected `subsets`."""
    array = np.asarray(subsets)
    if array.shape != shape or not np.issubdtype(array.dtype, np.integer):
        raise TfcafError(f"{NAME}: subsets must be integer indices of shape (nb_runs, N, "
                         f"subset_size) = {shape}; got {array.dtype} of shape {array.shape}")
    if array.size and (array.min() < 0 or array.max() >= features):
        raise TfcafError(f"{NAME}: subsets must index the H·W·3 = {features} values of an "
                         f"image, in [0, {features}); got {array.min()}..{array.max()}")
    ordered = np.sort(array.reshape(-1, shape[-1]), axis=1)
    if (np.diff(ordered, axis=1) == 0).any():
        raise TfcafError(f"{NAME}: subsets must not repeat an index within a subset "
                         "(drawn without replacement)")
    return array.astype(np.int64)


def _checked(images, heatmaps, substrate, nb_runs, subset_size, batch_size, subsets, abs,
             normalise):
    """The arguments of `faithfulness_correlation`, checked: images
    (N, H, W, 3), preprocessed maps (N, H·W), the substrate (3,) and the
    injected subsets (or None); `TfcafError` naming the first bad one."""
    images = check_images(images, NAME)
    count, height, width, _ = images.shape
    maps = quantus_preprocess(check_heatmaps(heatmaps, NAME, count, (height, width)),
                              abs, normalise).reshape(count, -1)
    features = height * width * 3
    check_int(nb_runs, "nb_runs", NAME, minimum=2)
    check_int(batch_size, "batch_size", NAME)
    check_int(subset_size, "subset_size", NAME)
    if subset_size >= features:
        raise TfcafError(f"{NAME}: subset_size must be smaller than the H·W·3 = {features} "
                         f"values of an image; got {subset_size}")
    colour = np.asarray(substrate, np.float32)
    if colour.shape != (3,):
        raise TfcafError(f"{NAME}: substrate must be 3 RGB values; got shape {colour.shape}")
    if subsets is not None:
        subsets = _check_subsets(subsets, (nb_runs, count, subset_size), features)
    return images, maps, colour, subsets


def _scores(outputs, targets, references, softmax):
    """(B,) float64 score: `target_scores` (softmax probability or cosine),
    or the raw target logit when `softmax` is False (classifiers)."""
    if references is not None or softmax:
        return np.asarray(target_scores(outputs, targets, references), np.float64)
    outputs = np.asarray(outputs, np.float32)
    return outputs[np.arange(len(outputs)), targets].astype(np.float64)


def _pearson(a, b):
    """Row-wise Pearson correlation of (N, R) arrays (NaN where a row is
    constant)."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    return np.where(np.isfinite(r), np.clip(r, -1.0, 1.0), np.nan)


def faithfulness_correlation(predict, images, heatmaps, targets=None, *, embedding=False,
                             substrate=(0.0, 0.0, 0.0), nb_runs=100, subset_size=224,
                             softmax=True, abs=False, normalise=True, subsets=None, seed=0,
                             batch_size=64):
    """Faithfulness Correlation of heatmaps, as Quantus `FaithfulnessCorrelation`.

    Quantus's defaults are nr_runs=100, subset_size=224, abs=False,
    normalise=True (`quantus_preprocess`; it does not change a correlation),
    Pearson correlation, and the raw model output for the target: a logit,
    i.e. tfcaf with softmax=False (and the substrate at Quantus's
    `perturb_baseline` value). tfcaf's default score is the softmax
    probability (softmax=True, as tfcaf.metrics.faithfulness), which equals
    Quantus run with its own softmax=True. Every perturbed copy of every image runs batched through
    `predict`, run-major (run r of image n is copy r · N + n).

    Args:
        predict: (B, H, W, 3) raw pixels -> (B, K) logits or (B, D) embeddings.
        images: (N, H, W, 3) raw pixels.
        heatmaps: (N, H, W) attributions at image size.
        targets: (N,) explained class ids (classifiers; None: the top-1
            class of each image), or a `tfcaf.Similarity` (the cosine
            similarity to its references, `tfcaf.metrics.scores.scoring`).
        embedding: True for retrieval nets: the score is the cosine
            similarity to the unperturbed image's embedding.
        substrate: (3,) RGB value of removed values (`model_substrate`).
        nb_runs: random subsets per image (>= 2).
        subset_size: input values per subset, 1 <= subset_size < H·W·3.
        softmax: classifiers: score the softmax probability (True) or the
            logit (False, Quantus's default).
        abs, normalise: Quantus's heatmap preprocessing (`quantus_preprocess`).
        subsets: optional (nb_runs, N, subset_size) int indices into the
            image flattened as (H, W, 3) (index (y·W + x)·3 + c), distinct
            within a subset; default drawn from `seed`
            (np.random.default_rng, one `choice` per copy in copy order).
        seed: seed of the drawn subsets.
        batch_size: images per `predict` call.

    Returns:
        dict "faithfulness_correlation" (N,) float64 Pearson r in [-1, 1] or
        NaN, "score_drops" (N, nb_runs) float64 score(image) −
        score(perturbed) and "attribution_sums" (N, nb_runs) float64.
    """
    images, maps, colour, subsets = _checked(images, heatmaps, substrate, nb_runs, subset_size,
                                             batch_size, subsets, abs, normalise)
    count, height, width, _ = images.shape
    features = height * width * 3
    rng = np.random.default_rng(seed)
    outputs = batched_outputs(predict, images, batch_size)
    if isinstance(targets, Similarity):
        references, targets = similarity_references(predict, targets, count, batch_size), None
    elif embedding:
        references, targets = outputs, None
    else:
        references = None
        targets = (outputs.argmax(axis=1).astype(np.int32) if targets is None
                   else check_targets(targets, count, NAME, outputs.shape[1]))
    original = _scores(outputs, targets, references, softmax)
    drops = np.empty((count, nb_runs))
    sums = np.empty((count, nb_runs))
    for first in range(0, nb_runs * count, batch_size):
        copy = np.arange(first, min(first + batch_size, nb_runs * count))
        run, image = copy // count, copy % count
        index = (subsets[run, image] if subsets is not None else
                 np.stack([rng.choice(features, subset_size, replace=False) for _ in copy]))
        rows = np.arange(len(copy))[:, None]
        batch = images[image].reshape(len(copy), -1)
        batch[rows, index] = colour[index % 3]
        out = predict(batch.reshape(len(copy), height, width, 3))
        scores = _scores(out, None if targets is None else targets[image],
                         None if references is None else references[image], softmax)
        drops[image, run] = original[image] - scores
        sums[image, run] = maps[image[:, None], index // 3].sum(axis=1)
    return {"faithfulness_correlation": _pearson(sums, drops), "score_drops": drops,
            "attribution_sums": sums}
