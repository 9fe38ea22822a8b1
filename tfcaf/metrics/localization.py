"""Boxes from heatmaps and localization accuracy (SPEC.md section 5).

Boxes are (x_min, y_min, x_max, y_max) in pixels with exclusive maxima: a
component covering columns 3..5 has x_min = 3, x_max = 6, so a box's area
is (x_max - x_min) · (y_max - y_min).
"""

import cv2
import numpy as np

MAXBOXACC_THRESHOLDS = np.arange(0.0, 1.0, 0.01)
MAXBOXACC_V2_IOUS = (0.3, 0.5, 0.7)


def _normalized(heatmap):
    """The min-max normalised map, or None when it has no usable content
    (empty, constant, or containing NaN/inf)."""
    heatmap = np.asarray(heatmap, np.float64)
    if heatmap.size == 0 or not np.isfinite(heatmap).all():
        return None
    low, high = heatmap.min(), heatmap.max()
    return None if high <= low else (heatmap - low) / (high - low)


def _mask_boxes(mask):
    """(M, 4) boxes of the 8-connected components of a boolean mask, largest
    component first."""
    if not mask.any():
        return np.zeros((0, 4))
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    stats = stats[1:count]  # row 0 is the background
    order = np.argsort(-stats[:, cv2.CC_STAT_AREA], kind="stable")
    x, y = stats[order, cv2.CC_STAT_LEFT], stats[order, cv2.CC_STAT_TOP]
    w, h = stats[order, cv2.CC_STAT_WIDTH], stats[order, cv2.CC_STAT_HEIGHT]
    return np.stack([x, y, x + w, y + h], axis=1).astype(np.float64)


def component_boxes(heatmap, threshold=0.2):
    """Boxes of all 8-connected components above `threshold`, largest first.

    Args:
        heatmap: (H, W) map (normalised to [0, 1] here).
        threshold: τ in [0, 1].

    Returns:
        (M, 4) float64 boxes, M = 0 for empty, constant or NaN maps.
    """
    norm = _normalized(heatmap)
    return np.zeros((0, 4)) if norm is None else _mask_boxes(norm >= threshold)


def largest_component_box(heatmap, threshold=0.2):
    """The CAM protocol's box: bounding box of the largest component, or None."""
    boxes = component_boxes(heatmap, threshold)
    return boxes[0] if len(boxes) else None


def iou_matrix(a, b):
    """IoU of every box of (M, 4) `a` with every box of (N, 4) `b` -> (M, N)."""
    a = np.asarray(a, np.float64).reshape(-1, 1, 4)
    b = np.asarray(b, np.float64).reshape(1, -1, 4)
    ix = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    iy = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = ix * iy
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])
    union = area(a) + area(b) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def iou(box, boxes):
    """IoU of one (4,) box with each of (N, 4) boxes -> (N,)."""
    return iou_matrix(box, boxes)[0]


def valid_boxes(boxes):
    """Drops padding rows (any negative coordinate, or empty) from (N, 4)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    keep = (boxes >= 0).all(axis=1) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes[keep]


def best_iou(predicted, gt_boxes):
    """Largest IoU between any predicted box (M, 4) and any ground truth."""
    gt = valid_boxes(gt_boxes)
    if len(predicted) == 0 or len(gt) == 0:
        return 0.0
    return float(iou_matrix(predicted, gt).max())


def localization_accuracy(heatmaps, gt_boxes, correct, threshold=0.2, iou_threshold=0.5):
    """Top-1 and GT-known localization accuracy (CAM protocol).

    Args:
        heatmaps: (N, H, W) maps at image size.
        gt_boxes: N arrays (M_i, 4), or (N, M, 4) padded with -1 rows.
        correct: (N,) bool: the top-1 class is right (classifiers) or the
            nearest neighbour has the query's class (retrieval nets).
        threshold: τ for the box.
        iou_threshold: IoU needed to count a box as a hit.

    Returns:
        dict with "top1_loc", "gt_known_loc" in [0, 1] and "hits" (N,) bool.
    """
    ious = np.array([best_iou(_as_boxes(largest_component_box(h, threshold)), g)
                     for h, g in zip(heatmaps, gt_boxes)])
    return accuracy_from_ious(ious, correct, iou_threshold)


def accuracy_from_ious(ious, correct, iou_threshold=0.5):
    """Top-1 / GT-known accuracy from each image's box IoU (N,) and top-1
    correctness (N,) bool; returns them with "hits" (N,) bool."""
    hits = np.asarray(ious) >= iou_threshold
    correct = np.asarray(correct, bool)
    return {"top1_loc": float(np.mean(hits & correct)) if len(hits) else 0.0,
            "gt_known_loc": float(np.mean(hits)) if len(hits) else 0.0,
            "hits": hits}


def _as_boxes(box):
    return np.zeros((0, 4)) if box is None else box[None]


def sweep_ious(heatmap, gt_boxes, thresholds):
    """Best IoU at each threshold, (T,) for the largest component and (T,)
    for the best of all components: the inputs of MaxBoxAcc v1 and v2."""
    largest, best = np.zeros(len(thresholds)), np.zeros(len(thresholds))
    norm, gt = _normalized(heatmap), valid_boxes(gt_boxes)
    if norm is None or len(gt) == 0:
        return largest, best
    for t, tau in enumerate(thresholds):
        boxes = _mask_boxes(norm >= tau)
        if len(boxes):
            ious = iou_matrix(boxes, gt)
            largest[t], best[t] = ious[0].max(), ious.max()
    return largest, best


def max_box_acc(heatmaps, gt_boxes, thresholds=MAXBOXACC_THRESHOLDS, version=1):
    """MaxBoxAcc (Choe et al., CVPR 2020).

    Version 1: max over τ of GT-known accuracy at IoU 0.5, largest component.
    Version 2: boxes of all components (best match), the max over τ taken per
    IoU threshold in {0.3, 0.5, 0.7}, then averaged.

    Returns:
        dict with "max_box_acc" in [0, 1], "best_threshold" (v1) or
        "per_iou" (v2).
    """
    thresholds = np.asarray(thresholds, np.float64)
    ious = np.stack([sweep_ious(h, g, thresholds)[version - 1]
                     for h, g in zip(heatmaps, gt_boxes)])
    return max_box_acc_from_ious(ious, thresholds, version)


def max_box_acc_from_ious(ious, thresholds=MAXBOXACC_THRESHOLDS, version=1):
    """MaxBoxAcc from (N, T) best IoUs per threshold (`sweep_ious`: its
    first output for version 1, its second for version 2)."""
    thresholds = np.asarray(thresholds, np.float64)
    if version == 1:
        accuracy = (ious >= 0.5).mean(axis=0)
        best = int(np.argmax(accuracy))
        return {"max_box_acc": float(accuracy[best]),
                "best_threshold": float(thresholds[best])}
    per_iou = {delta: float((ious >= delta).mean(axis=0).max()) for delta in MAXBOXACC_V2_IOUS}
    return {"max_box_acc": float(np.mean(list(per_iou.values()))), "per_iou": per_iou}
