"""Boxes and IoUs exactly as clovaai/wsolevaluation computes them (commit
96f4b88, `inference.py` and `evaluation.py`; docs/method.md §5).

The protocol of the WSOL literature since Choe et al. (CVPR 2020):

- the raw map, cast to float64, is resized to 224 × 224 with bicubic
  interpolation, then min-max normalised (a map with a NaN, or a constant
  one, becomes all zeros);
- ground-truth boxes (x0, y0, x1, y1) in the frame of an image of size
  (H, W) are scaled to 224 (x · 224 / W, y · 224 / H) and truncated to int;
- at threshold τ the map is quantised as uint8(map · 255) and binarised
  strictly above int(τ · max of the uint8 map); the boxes are the bounding
  rectangles (x, y, x + w, y + h) of OpenCV contours (RETR_TREE,
  CHAIN_APPROX_SIMPLE), x1 and y1 clipped to 223, and (0, 0, 0, 0) when
  there is no contour. Version 1 keeps the contour of largest
  `cv2.contourArea` (the first on ties), version 2 every contour;
- IoU counts pixels inclusively, area (x1 − x0 + 1)(y1 − y0 + 1), and a
  non-positive union gives 0.
"""

import cv2
import numpy as np

from tfcaf.errors import TfcafError

RESIZE = 224  # the reference evaluates every map at 224 × 224


def score_map(heatmap):
    """(h, w) raw map -> (224, 224) float64 in [0, 1], the reference's
    `cv2.resize(INTER_CUBIC)` then `normalize_scoremap`."""
    heatmap = np.asarray(heatmap, np.float64)
    if heatmap.size == 0:
        return np.zeros((RESIZE, RESIZE))
    resized = cv2.resize(heatmap, (RESIZE, RESIZE), interpolation=cv2.INTER_CUBIC)
    # The reference tests only NaN; an infinite value would give NaNs after
    # its normalisation, so it is treated as one here.
    if not np.isfinite(resized).all() or resized.min() == resized.max():
        return np.zeros_like(resized)
    resized -= resized.min()
    resized /= resized.max()
    return resized


def scale_boxes(gt_boxes, image_size):
    """(M, 4) boxes of an (H, W) image -> (M', 4) int64 boxes at 224, the
    reference's `resize_bbox`; rows with a negative coordinate (padding)
    are dropped."""
    boxes = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    boxes = boxes[(boxes >= 0).all(axis=1)]
    height, width = (float(s) for s in image_size)
    if height <= 0 or width <= 0:
        raise TfcafError(f"image_size must be (H, W) > 0, got {tuple(image_size)}")
    scale = np.array([RESIZE / width, RESIZE / height] * 2)
    # int() truncates toward zero; coordinates are non-negative here.
    return np.array([[int(float(v) * float(s)) for v, s in zip(box, scale)]
                     for box in boxes], np.int64).reshape(-1, 4)


def quantized(scores):
    """(224, 224) scores in [0, 1] -> the reference's uint8 map."""
    return (scores * 255).astype(np.uint8)


def contour_boxes(image, threshold):
    """Boxes of every contour of uint8 `image` above int(threshold ·
    image.max()), in OpenCV's order.

    Returns:
        boxes (K, 4) int64 and their contours' `cv2.contourArea` (K,);
        K = 1, box (0, 0, 0, 0), area 0 when there is no contour.
    """
    height, width = image.shape
    _, binary = cv2.threshold(image, int(threshold * np.max(image)), 255, cv2.THRESH_BINARY)
    contours = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
    if len(contours) == 0:
        return np.zeros((1, 4), np.int64), np.zeros(1)
    rects = np.array([cv2.boundingRect(c) for c in contours], np.int64)
    x, y, w, h = rects.T
    boxes = np.stack([x, y, np.minimum(x + w, width - 1), np.minimum(y + h, height - 1)], 1)
    return boxes, np.array([cv2.contourArea(c) for c in contours])


def iou_matrix(a, b):
    """IoU with inclusive pixel areas of (M, 4) `a` and (N, 4) `b` -> (M, N),
    the reference's `calculate_multiple_iou`."""
    a = np.asarray(a, np.int64).reshape(-1, 1, 4)
    b = np.asarray(b, np.int64).reshape(1, -1, 4)
    ix = np.maximum(0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1)
    iy = np.maximum(0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1)
    inter = ix * iy
    area = lambda x: (x[..., 2] - x[..., 0] + 1) * (x[..., 3] - x[..., 1] + 1)
    union = area(a) + area(b) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def sweep_ious(heatmap, gt_boxes, thresholds, image_size=None):
    """Best IoU at each threshold: (T,) for the largest contour (v1) and
    (T,) for the best of all contours (v2).

    Args:
        heatmap: (h, w) raw map at any resolution.
        gt_boxes: (M, 4) boxes in the frame of an `image_size` image,
            negative rows (padding) ignored.
        thresholds: (T,) τ values in [0, 1).
        image_size: (H, W) of the image the boxes belong to (default: the
            map's own size).
    """
    heatmap = np.asarray(heatmap)
    gt = scale_boxes(gt_boxes, image_size or heatmap.shape[:2])
    largest, best = np.zeros(len(thresholds)), np.zeros(len(thresholds))
    if len(gt) == 0:
        return largest, best
    image = quantized(score_map(heatmap))
    # Many τ share one integer cut (int(τ · max)): compute each cut once.
    cuts = {}
    peak = np.max(image)
    for t, tau in enumerate(thresholds):
        cut = int(tau * peak)
        if cut not in cuts:
            boxes, areas = contour_boxes(image, tau)
            ious = iou_matrix(boxes, gt).max(axis=1)
            # np.argmax takes the first maximum, like the reference's max().
            cuts[cut] = (ious[int(np.argmax(areas))], ious.max())
        largest[t], best[t] = cuts[cut]
    return largest, best


def largest_box(heatmap, threshold, image_size=None):
    """The v1 box at τ, scaled back to an `image_size` (H, W) image (default:
    the map's size): (4,) float64 (x0, y0, x1, y1), or None when nothing is
    above the threshold. For drawing; metrics use `sweep_ious`."""
    heatmap = np.asarray(heatmap)
    height, width = image_size or heatmap.shape[:2]
    image = quantized(score_map(heatmap))
    if not (image > int(threshold * np.max(image))).any():
        return None
    boxes, areas = contour_boxes(image, threshold)
    return boxes[int(np.argmax(areas))] * np.array([width, height] * 2, np.float64) / RESIZE
