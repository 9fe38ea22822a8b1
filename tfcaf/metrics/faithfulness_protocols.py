"""The reference protocols that `tfcaf.metrics.faithfulness` offers beside
its defaults (numpy only; the model calls stay in faithfulness.py):

- deletion / insertion, protocol "xplique": xplique 2.0.2
  `metrics.Deletion` / `Insertion` (`CausalFidelity`);
- Average Drop / Increase, protocols "xplique" (`AverageDropMetric`,
  `AverageIncreaseMetric`) and "pytorch-grad-cam" (grad-cam 1.5.7
  `DropInConfidence`, `IncreaseInConfidence`);
- the pointing game, protocols "torchray" (TorchRay
  `benchmark.pointing_game.PointingGame`) and "quantus" (Quantus
  `PointingGame`).
"""

import numpy as np

from tfcaf.errors import TfcafError

DELETION_PROTOCOLS = ("rise", "xplique")
AVERAGE_DROP_PROTOCOLS = ("grad-cam++", "xplique", "pytorch-grad-cam")
POINTING_PROTOCOLS = ("tfcaf", "torchray", "quantus")
# xplique's _EPS: min-max denominator and Average Drop's denominator.
XPLIQUE_EPS = 1e-8


def check_protocol(protocol, choices, function):
    """Raises a TfcafError naming `choices` unless `protocol` is one."""
    if protocol not in choices:
        raise TfcafError(f"{function}: unknown protocol {protocol!r}; choose one of "
                         f"{', '.join(repr(c) for c in choices)}")


def xplique_step_counts(num_pixels, steps=10, max_percentage_perturbed=1.0):
    """(steps + 1,) int pixels switched after each step, as CausalFidelity:
    `linspace(0, floor(num_pixels · max_percentage_perturbed), steps + 1)`
    truncated to int32 (so not always evenly spaced); steps = -1 means one
    pixel per step."""
    if not 0.0 < max_percentage_perturbed <= 1.0:
        raise TfcafError(f"max_percentage_perturbed must be in ]0, 1], got "
                         f"{max_percentage_perturbed}")
    largest = int(np.floor(num_pixels * max_percentage_perturbed))
    steps = largest if steps == -1 else int(steps)
    if steps < 1:
        raise TfcafError(f"steps must be >= 1 or -1 (every pixel), got {steps}")
    return np.linspace(0, largest, steps + 1, dtype=np.int32)


def xplique_ranks(heatmaps):
    """(N, H, W) int32 rank of each pixel as CausalFidelity orders them,
    0 = first switched: `np.argsort(flat)[:, ::-1]` on the maps as given
    (numpy's default, unstable sort: the order of tied values is numpy's;
    NaN sorts last, so it goes first)."""
    heatmaps = np.asarray(heatmaps)
    flat = heatmaps.reshape(len(heatmaps), -1)
    order = np.argsort(flat, axis=-1)[:, ::-1]
    ranks = np.empty(order.shape, np.int64)
    np.put_along_axis(ranks, order, np.arange(flat.shape[1])[None], axis=1)
    return ranks.reshape(heatmaps.shape).astype(np.int32)


def xplique_mask(heatmaps):
    """(N, H, W) float32 mask of xplique's Average Drop / Increase: |map|
    (channel mean for (N, H, W, C) maps), min-max scaled per map with
    denominator max − min + 1e-8, in float32 as xplique."""
    mask = np.abs(np.asarray(heatmaps, np.float32))
    if mask.ndim == 4:
        mask = mask.mean(-1, dtype=np.float32)
    low = mask.min(axis=(1, 2), keepdims=True)
    high = mask.max(axis=(1, 2), keepdims=True)
    return ((mask - low) / (high - low + np.float32(XPLIQUE_EPS))).astype(np.float32)


def box_masks(gt_boxes, shape):
    """(N, H, W) bool: pixel (y, x) is set when x0 <= x < x1 and
    y0 <= y < y1 for a box (x0, y0, x1, y1) of its image; rows with a
    negative coordinate are padding."""
    rows, cols = np.arange(shape[0])[:, None], np.arange(shape[1])[None, :]
    masks = np.zeros((len(gt_boxes), *shape), bool)
    for mask, boxes in zip(masks, gt_boxes):
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        for x0, y0, x1, y1 in boxes[(boxes >= 0).all(axis=1)]:
            mask |= (x0 <= cols) & (cols < x1) & (y0 <= rows) & (rows < y1)
    return masks


def torchray_hit(heatmap, mask, tolerance):
    """TorchRay's PointingGame.evaluate at the point of its benchmark's
    `_saliency_to_point` (the first arg-max in row-major order, NaN counting
    as the maximum): a hit when a mask pixel lies at squared distance
    < tolerance² from it (the mask dilated by an open disc; with tolerance
    0 nothing is accepted)."""
    y, x = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    rows, cols = np.arange(heatmap.shape[0])[:, None], np.arange(heatmap.shape[1])[None, :]
    accept = ((rows - y) ** 2 + (cols - x) ** 2).astype(np.float32) < np.float32(tolerance) ** 2
    return bool((mask & accept).any())


def quantus_hit(heatmap, mask):
    """Quantus' PointingGame (weighted=False): a hit when any pixel equal
    to the map's maximum lies in the mask (every tied maximum counts; a
    constant map hits a non-empty mask; a NaN maximum hits nothing)."""
    return bool((mask & (heatmap == heatmap.max())).any())
