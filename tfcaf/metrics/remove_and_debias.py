"""ROAD, RemOve And Debias (Rong et al., ICML 2022), as pytorch-grad-cam
1.5.7 computes it (`pytorch_grad_cam/metrics/road.py`): pixels chosen by a
heatmap percentile are replaced by noisy linear imputation, and the score
change of each image is averaged over percentiles.

Conventions are those of `tfcaf.metrics.faithfulness`: images (N, H, W, C)
float32 as the model takes them, heatmaps (N, H, W), `predict` a batch ->
(B, K) logits or (B, D) embeddings. The score is the softmax probability of
the target class (pytorch-grad-cam's `ClassifierOutputSoftmaxTarget`) or,
for retrieval nets (embedding=True), the cosine similarity to the
unperturbed image's embedding.

Which pixels go at percentile p (pytorch-grad-cam's `RemoveMostRelevantFirst`
/ `RemoveLeastRelevantFirst`, `removed_pixels`): with t the p-th percentile
of the image's heatmap h (numpy's linear interpolation), MoRF removes the
pixels with h >= t and LeRF those with 1 - h >= the p-th percentile of
1 - h (float32). So p is the share of pixels *kept* (about 100 - p % go,
ties at t all go), not removed as in the paper's curves; over the default
symmetric percentiles 10..90 the average is the same set of removal levels.
"""

import numpy as np

from tfcaf.errors import TfcafError
from tfcaf.caf.targets import Similarity
from tfcaf.metrics.scores import scoring, target_scores

PERCENTILES = (10, 20, 30, 40, 50, 60, 70, 80, 90)
ORDERS = ("morf", "lerf", "combined")
# NoisyLinearImputer's weights of the 8 neighbours ((row, column) offset).
NEIGHBOUR_WEIGHTS = (((1, 1), 1 / 12), ((0, 1), 1 / 6), ((-1, 1), 1 / 12),
                     ((1, -1), 1 / 12), ((0, -1), 1 / 6), ((-1, -1), 1 / 12),
                     ((1, 0), 1 / 6), ((-1, 0), 1 / 6))


def _sparse_system(removed, image):
    """NoisyLinearImputer.setup_sparse_system for one image: each removed
    pixel equals the weighted mean of its in-image neighbours.

    Args:
        removed: (H, W) bool; image: (H, W, C) float32.

    Returns:
        (A (n, n) float64 CSC, b (n, C) float64, (n,) flat indices of the
        removed pixels, row-major), built with the reference's operations
        in its order (float32 products weight · pixel, as numpy gives).
    """
    from scipy.sparse import coo_matrix
    height, width = removed.shape
    known = ~removed.reshape(-1)
    pixels = image.reshape(height * width, -1)
    unknown = np.flatnonzero(~known)
    count = len(unknown)
    variable = np.zeros(height * width, dtype=int)
    variable[unknown] = np.arange(count)
    b = np.zeros((count, pixels.shape[1]))
    diagonal = np.ones(count)
    rows, columns, values = [], [], []
    for (d_row, d_column), weight in NEIGHBOUR_WEIGHTS:
        row, column = unknown // width + d_row, unknown % width + d_column
        inside = (row >= 0) & (column >= 0) & (row < height) & (column < width)
        ids = np.flatnonzero(inside)
        neighbours = unknown[inside] + d_row * width + d_column
        has_value = known[neighbours]
        b[ids[has_value]] -= weight * pixels[neighbours[has_value]]
        rows.append(ids[~has_value])
        columns.append(variable[neighbours[~has_value]])
        values.append(np.full(len(rows[-1]), weight))
        diagonal[~inside] = diagonal[~inside] - weight
    rows.append(np.arange(count))
    columns.append(np.arange(count))
    values.append(-diagonal)
    matrix = coo_matrix((np.concatenate(values), (np.concatenate(rows),
                                                  np.concatenate(columns))),
                        shape=(count, count)).tocsc()
    matrix.sort_indices()
    return matrix, b, unknown


def _impute_one(image, removed, noise, draws):
    """One (H, W, C) float32 image with its `removed` (H, W) pixels solved
    (float32 of the float64 solution) plus float32(noise) · draws."""
    from scipy.sparse.linalg import spsolve
    out = np.array(image, np.float32, copy=True)
    if not removed.any():
        return out
    matrix, b, unknown = _sparse_system(removed, out)
    channels = out.shape[-1]
    if removed.all():
        # No known pixel: b is 0 and the reference's solve returns zeros.
        solution = np.zeros((len(unknown), channels), np.float32)
    else:
        solution = np.asarray(spsolve(matrix, b)).reshape(len(unknown), channels)
    flat = out.reshape(-1, channels)
    flat_draws = np.asarray(draws, np.float32).reshape(-1, channels)
    flat[unknown] = solution.astype(np.float32) + np.float32(noise) * flat_draws[unknown]
    return out


def noisy_linear_imputation(images, removed, noise=0.01, seed=0, draws=None):
    """pytorch-grad-cam's (Rong et al.'s) `NoisyLinearImputer`: every removed
    pixel becomes the weighted mean of its 8 neighbours (1/6 edge, 1/12
    diagonal, renormalised at the image border), solved jointly as one
    sparse linear system per image (scipy `spsolve`), plus Gaussian noise.

    Args:
        images: (N, H, W, C) float32, in the model's input units.
        removed: (N, H, W) bool, True where a pixel is imputed.
        noise: standard deviation of the added noise, in the units of
            `images` (the reference's 0.01 is in its model-input units,
            e.g. ImageNet-normalised tensors; for raw [0, 255] pixels the
            same relative noise is about 0.01 · 255 · 0.226 ≈ 0.58).
        seed: seed of the numpy Generator drawing the noise when `draws`
            is None (reproducible).
        draws: optional (N, H, W, C) standard-normal values; the draw of
            removed pixel (y, x), channel c of image i is draws[i, y, x, c]
            (the reference's `torch.randn_like` values, placed there).

    Returns:
        (N, H, W, C) float32 imputed images (kept pixels unchanged). Where
        every pixel is removed the reference's solve gives zeros: the
        image becomes pure noise.
    """
    images = np.asarray(images, np.float32)
    removed = np.asarray(removed, bool)
    if images.ndim != 4 or removed.shape != images.shape[:3]:
        raise TfcafError(f"removed must be (N, H, W) = {images.shape[:3]} for images "
                         f"(N, H, W, C), got removed {removed.shape}, images {images.shape}")
    if draws is None:
        draws = np.random.default_rng(seed).standard_normal(images.shape, np.float32)
    elif np.shape(draws) != images.shape:
        raise TfcafError(f"draws must have the images' shape {images.shape}, "
                         f"got {np.shape(draws)}")
    return np.stack([_impute_one(image, mask, noise, draw)
                     for image, mask, draw in zip(images, removed, draws)])


def removed_pixels(heatmaps, percentile, order):
    """Pixels removed at `percentile` by pytorch-grad-cam's
    RemoveMostRelevantFirst ("morf") or RemoveLeastRelevantFirst ("lerf").

    Args:
        heatmaps: (N, H, W); taken as float32, as the reference's cams.
        percentile: in (0, 100); the share of pixels kept (module docstring).
        order: "morf" (h >= p-th percentile of h goes) or "lerf" (the same
            on 1 - h).

    Returns:
        (N, H, W) bool, True where removed; ties at the threshold all go.
    """
    maps = np.asarray(heatmaps, np.float32)
    if order == "lerf":
        maps = np.float32(1) - maps
    elif order != "morf":
        raise TfcafError(f"order must be 'morf' or 'lerf' here, got {order!r}")
    thresholds = np.stack([np.float32(np.percentile(m, percentile)) for m in maps])
    return ~(maps < thresholds[:, None, None])


def _check(images, heatmaps, targets, embedding, percentiles, order, noise, batch_size):
    """Raises TfcafError on bad `road` arguments; returns them converted."""
    images = np.asarray(images, np.float32)
    heatmaps = np.asarray(heatmaps, np.float32)
    if images.ndim != 4 or heatmaps.shape != images.shape[:3]:
        raise TfcafError(f"heatmaps must be (N, H, W) = {images.shape[:3]} for images "
                         f"(N, H, W, C), got heatmaps {heatmaps.shape}, images {images.shape}")
    if not np.isfinite(heatmaps).all():
        raise TfcafError("heatmaps contain NaN or infinite values")
    if order not in ORDERS:
        raise TfcafError(f"unknown ROAD order {order!r}; choose one of {', '.join(ORDERS)}")
    percentiles = np.asarray(percentiles, np.float64).reshape(-1)
    if not len(percentiles) or not ((percentiles > 0) & (percentiles < 100)).all():
        raise TfcafError(f"percentiles must be in (0, 100), got {percentiles.tolist()}")
    if not (np.isfinite(noise) and noise >= 0):
        raise TfcafError(f"noise must be a finite value >= 0, got {noise}")
    if int(batch_size) < 1:
        raise TfcafError(f"batch_size must be >= 1, got {batch_size}")
    if not embedding and not isinstance(targets, Similarity):
        if targets is None or np.shape(targets) != (len(images),):
            raise TfcafError(f"targets must be (N,) = ({len(images)},) class ids for a "
                             f"classifier, got {None if targets is None else np.shape(targets)}")
        targets = np.asarray(targets, np.int32)
    return images, heatmaps, targets, percentiles.tolist()


def _perturbed(images, heatmaps, percentiles, orders, noise, seed, draws):
    """Yields (order, percentile index, image index, imputed image) for
    every order, percentile and image; default draws come, in that order,
    from one Generator(seed)."""
    rng = np.random.default_rng(seed)
    shape = (len(percentiles),) + images.shape
    if draws is not None:
        draws = np.broadcast_to(np.asarray(draws, np.float32), shape)
    for order in orders:
        for p, percentile in enumerate(percentiles):
            removed = removed_pixels(heatmaps, percentile, order)
            for i, image in enumerate(images):
                draw = (rng.standard_normal(image.shape, np.float32) if draws is None
                        else draws[p, i])
                yield order, p, i, _impute_one(image, removed[i], noise, draw)


def _score_differences(predict, items, original, targets, references, batch_size,
                       differences):
    """Fills `differences` {order: (P, N) float32} with score(imputed) -
    score(original) of `items`, which go through `predict` `batch_size`
    at a time."""
    def flush(batch):
        index = np.array([i for _, _, i, _ in batch])
        outputs = predict(np.stack([image for *_, image in batch]))
        scores = target_scores(outputs, None if targets is None else targets[index],
                               None if references is None else references[index]).numpy()
        for (order, p, i, _), score in zip(batch, np.float32(scores)):
            differences[order][p, i] = score - original[i]

    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == batch_size:
            flush(batch)
            batch = []
    if batch:
        flush(batch)


def road(predict, images, heatmaps, targets=None, *, embedding=False,
         percentiles=PERCENTILES, order="combined", noise=0.01, seed=0, draws=None,
         batch_size=64):
    """ROAD of pytorch-grad-cam 1.5.7: ROADMostRelevantFirstAverage ("morf",
    lower is better), ROADLeastRelevantFirstAverage ("lerf", higher is
    better) or ROADCombined ("combined" = (LeRF - MoRF) / 2, higher is
    better; pytorch-grad-cam's, not the paper's).

    At each percentile p (`removed_pixels`) the chosen pixels are imputed
    (`noisy_linear_imputation`); the curve value is score(imputed) -
    score(image), float32, and MoRF / LeRF are its mean over percentiles.

    Args:
        predict: (B, H, W, C) -> (B, K) logits or (B, D) embeddings.
        images: (N, H, W, C) float32 in the model's input units.
        heatmaps: (N, H, W) at image size.
        targets: (N,) class ids (classifiers), or a `tfcaf.Similarity`
            (cosine similarity to its references: `tfcaf.metrics.scores.scoring`).
        embedding: score = cosine similarity to the unperturbed image's
            embedding instead of the softmax probability of `targets`.
        percentiles: values in (0, 100), the share of pixels kept.
        order: "morf", "lerf" or "combined".
        noise: imputation noise std in the units of `images` (see
            `noisy_linear_imputation`).
        seed: seed of the noise draws (fresh ones per order, percentile
            and image) when `draws` is None.
        draws: optional standard-normal values broadcastable to
            (P, N, H, W, C), used by both orders (e.g. one (N, H, W, C) field).
        batch_size: imputed images per `predict` call.

    Returns:
        dict "road" (N,) float32 (the value of `order`), "road_mean" (float),
        "original_scores" (N,), "morf", "lerf" (N,) and "morf_curve",
        "lerf_curve" (N, P), column j for percentiles[j] (both orders,
        whatever `order`).
    """
    images, heatmaps, targets, percentiles = _check(
        images, heatmaps, targets, embedding, percentiles, order, noise, batch_size)
    original, classes, references = scoring(predict, images, targets, embedding, batch_size)
    targets = None if classes is None else classes.numpy()
    original = np.float32(original)
    # Both orders always: the result's keys do not depend on `order`.
    orders = ["lerf", "morf"]
    items = _perturbed(images, heatmaps, percentiles, orders, noise, seed, draws)
    differences = {o: np.zeros((len(percentiles), len(images)), np.float32) for o in orders}
    _score_differences(predict, items, original, targets, references, int(batch_size),
                       differences)
    result = {"original_scores": original}
    for name in orders:
        result[f"{name}_curve"] = differences[name].T.copy()
        result[name] = np.mean(differences[name], axis=0)  # float32, as the reference
    result["road"] = ((result["lerf"] - result["morf"]) / np.float32(2)
                      if order == "combined" else result[order])
    result["road_mean"] = float(np.mean(result["road"]))
    return result

