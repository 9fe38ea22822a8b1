"""MuFidelity (Bhatt et al., "Evaluating and Aggregating Feature-based
Model Explanations", IJCAI 2020, def. 3) as xplique 2.0.2's
`metrics.MuFidelity` computes it: for random subsets S of the cells of a
grid_size × grid_size grid over the image, the correlation between the
score drop f(x) − f(x with S set to the baseline) and the heatmap's sum
over S.

Conventions as `tfcaf.metrics.faithfulness`: raw images, `predict` to
logits or embeddings, scores = softmax probability of the target (xplique
activation="softmax" with one-hot targets) or cosine similarity to the
unperturbed embedding (xplique's operator cos(model(x), t)); xplique's
`baseline_mode` is the substrate colour.
"""

import numpy as np
import tensorflow as tf

from tfcaf.errors import TfcafError
from tfcaf.metrics import faithfulness as fm
from tfcaf.metrics.scores import scoring

CORRELATIONS = ("spearman", "pearson")


def draw_subsets(count, nb_samples, grid_size, subset_percent, seed=0):
    """(count, nb_samples, grid_size, grid_size) bool, True = the cell is in
    the subset (set to the baseline): xplique's rule `uniform > p` keeps a
    cell, so each is removed with probability `subset_percent`; numpy's
    default_rng(seed) stands in for xplique's unseeded tf.random.uniform."""
    uniform = np.random.default_rng(seed).random((count, nb_samples, grid_size, grid_size))
    return uniform <= subset_percent


def grid_cells(grid_size, height, width):
    """(H, W) int32 grid cell (row-major) of each pixel: xplique's
    tf.image.resize(masks, (H, W), method="nearest") of the grid, applied
    to the cell numbers."""
    numbers = tf.reshape(tf.range(grid_size * grid_size, dtype=tf.float32),
                         (1, grid_size, grid_size, 1))
    cells = tf.image.resize(numbers, (height, width), method="nearest")
    return tf.cast(cells[0, ..., 0], tf.int32)


def correlations(drops, attributions, kind="spearman"):
    """(N,) row-wise correlation of (N, S) arrays: Spearman (Pearson of
    average ranks, scipy's spearmanr) or Pearson; a constant row gives 0
    (xplique's NaN -> 0)."""
    from scipy.stats import rankdata
    a, b = np.asarray(drops, np.float64), np.asarray(attributions, np.float64)
    if kind == "spearman":
        a, b = rankdata(a, axis=1), rankdata(b, axis=1)
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    norms = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        result = (a * b).sum(1) / norms
    return np.where(norms > 0, np.clip(result, -1.0, 1.0), 0.0)


def _checked_subsets(subsets, count, nb_samples, grid_size):
    subsets = np.asarray(subsets, bool)
    if subsets.ndim == 3:
        subsets = np.broadcast_to(subsets, (count, *subsets.shape))
    if subsets.shape != (count, nb_samples, grid_size, grid_size):
        raise TfcafError(f"mufidelity: subsets {subsets.shape} must be (N, nb_samples, "
                         f"grid_size, grid_size) = {(count, nb_samples, grid_size, grid_size)} "
                         "or that without N")
    return subsets


def mufidelity(predict, images, heatmaps, targets=None, *, embedding=False,
               substrate=(0.0, 0.0, 0.0), grid_size=9, subset_percent=0.2, nb_samples=200,
               seed=0, batch_size=64, subsets=None, correlation="spearman"):
    """MuFidelity per image; all N · nb_samples perturbed images run batched.

    Args:
        predict: (B, H, W, 3) raw pixels -> (B, K) logits or (B, D).
        images: (N, H, W, 3) raw pixels; heatmaps: (N, H, W) at image size.
        targets: (N,) explained classes (classifiers), or a
            `tfcaf.Similarity` (`tfcaf.metrics.scores.scoring`).
        embedding: True for retrieval nets.
        substrate: (3,) RGB baseline of the subsets' pixels.
        grid_size: cells per side (None: one per pixel row, xplique's
            grid_size=None, the original pixel-wise metric).
        subset_percent: probability that a cell is in a subset.
        nb_samples: subsets per image.
        seed: for `draw_subsets` when `subsets` is None.
        batch_size: images per `predict` call.
        subsets: (N, nb_samples, g, g) or (nb_samples, g, g) bool, True =
            cell set to the baseline (e.g. xplique's own draws).
        correlation: "spearman" (xplique's scipy spearmanr) or "pearson"
            (Bhatt et al.'s definition).

    Returns:
        dict "mufidelity" (N,) in [-1, 1] (higher is better), "average"
        (xplique's evaluate()), "drops" (N, nb_samples) score drops,
        "attributions" (N, nb_samples) heatmap sums over the subsets,
        "subsets" (N, nb_samples, g, g) bool.
    """
    if correlation not in CORRELATIONS:
        raise TfcafError(f"mufidelity: unknown correlation {correlation!r}; choose one of "
                         f"{', '.join(repr(c) for c in CORRELATIONS)}")
    images, heatmaps = fm.checked_maps(images, heatmaps, batch_size, "mufidelity")
    count, height, width = images.shape[:3]
    grid_size = grid_size or height
    if subsets is None:
        subsets = draw_subsets(count, nb_samples, grid_size, subset_percent, seed)
    subsets = _checked_subsets(subsets, count, nb_samples, grid_size)
    original, targets, references = scoring(predict, images, targets, embedding, batch_size)
    cells = grid_cells(grid_size, height, width)
    flat = tf.constant(subsets.reshape(count * nb_samples, -1))
    start = tf.constant(images)
    baseline = tf.constant(np.asarray(substrate, np.float32))

    def build(index):
        removed = tf.gather(tf.gather(flat, index), cells, axis=1)   # (B, H, W)
        return tf.where(removed[..., None], baseline, tf.gather(start, index // nb_samples))

    scores = fm.batched_scores(predict, build, count, nb_samples, targets, references,
                               batch_size)
    drops = original[:, None].astype(np.float64) - scores
    cell_sums = np.stack([np.bincount(cells.numpy().reshape(-1), weights=heatmap,
                                      minlength=grid_size * grid_size)
                          for heatmap in np.asarray(heatmaps, np.float64).reshape(count, -1)])
    attributions = np.einsum("nsc,nc->ns", subsets.reshape(count, nb_samples, -1), cell_sums)
    values = correlations(drops, attributions, correlation)
    return {"mufidelity": values, "average": float(values.mean()), "drops": drops,
            "attributions": attributions, "subsets": subsets}
