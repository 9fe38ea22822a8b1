"""Boxes from heatmaps and localization accuracy (docs/method.md §5).

Two box protocols:

- "wsolevaluation" (the default): exactly clovaai/wsolevaluation, the
  evaluation code of the WSOL literature; see `tfcaf.metrics.wsolevaluation`.
- "tfcaf": 8-connected components of the map at image size, kept at ≥ τ.
  Boxes are (x_min, y_min, x_max, y_max) in pixels with exclusive maxima: a
  component covering columns 3..5 has x_min = 3, x_max = 6, so a box's area
  is (x_max - x_min) · (y_max - y_min).
"""

import cv2
import numpy as np

from tfcaf.errors import TfcafError
from tfcaf.metrics import wsolevaluation

MAXBOXACC_THRESHOLDS = np.arange(0.0, 1.0, 0.01)
MAXBOXACC_V2_IOUS = (0.3, 0.5, 0.7)
PROTOCOLS = ("wsolevaluation", "tfcaf")


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


def localization_accuracy(heatmaps, gt_boxes, correct, threshold=0.2, iou_threshold=0.5,
                          protocol="wsolevaluation", image_size=None):
    """Top-1 and GT-known localization accuracy at one threshold τ, with the
    box rule of `protocol` (its largest component/contour).

    Args:
        heatmaps: (N, h, w) maps (for "tfcaf", at image size).
        gt_boxes: N arrays (M_i, 4), or (N, M, 4) padded with -1 rows.
        correct: (N,) bool: the top-1 class is right (classifiers) or the
            nearest neighbour has the query's class (retrieval nets).
        threshold: τ for the box.
        iou_threshold: IoU needed to count a box as a hit.
        protocol, image_size: see `max_box_acc`.

    Returns:
        dict with "top1_loc", "gt_known_loc" in [0, 1] and "hits" (N,) bool.
    """
    ious = np.array([box_iou_at(h, g, threshold, protocol, image_size)
                     for h, g in zip(heatmaps, gt_boxes)])
    return accuracy_from_ious(ious, correct, iou_threshold)


def box_iou_at(heatmap, gt_boxes, threshold, protocol="wsolevaluation", image_size=None):
    """Best IoU of the largest-component (largest-contour) box at τ with the
    ground truth: the same rule as MaxBoxAcc v1 at that τ."""
    return float(sweep_ious(heatmap, gt_boxes, [threshold], protocol, image_size)[0][0])


def accuracy_from_ious(ious, correct, iou_threshold=0.5):
    """Top-1 / GT-known accuracy from each image's box IoU (N,) and top-1
    correctness (N,) bool; returns them with "hits" (N,) bool."""
    hits = np.asarray(ious) >= iou_threshold
    correct = np.asarray(correct, bool)
    return {"top1_loc": float(np.mean(hits & correct)) if len(hits) else 0.0,
            "gt_known_loc": float(np.mean(hits)) if len(hits) else 0.0,
            "hits": hits}


def predicted_box(heatmap, threshold=0.2, protocol="wsolevaluation", image_size=None):
    """The box `protocol` predicts at τ (largest component / contour) in the
    frame of an `image_size` image: (4,) float64, or None. For drawing."""
    check_protocol(protocol)
    if protocol == "wsolevaluation":
        return wsolevaluation.largest_box(heatmap, threshold, image_size)
    return largest_component_box(_at_size(heatmap, image_size), threshold)


def check_protocol(protocol):
    """Raises `TfcafError` unless `protocol` is one of `PROTOCOLS`."""
    if protocol not in PROTOCOLS:
        raise TfcafError(f"box protocol must be one of {', '.join(PROTOCOLS)}, "
                         f"got {protocol!r}")


def sweep_ious(heatmap, gt_boxes, thresholds, protocol="wsolevaluation", image_size=None):
    """Best IoU at each threshold, (T,) for the largest component (contour)
    and (T,) for the best of all: the inputs of MaxBoxAcc v1 and v2.

    Args:
        heatmap: (h, w) map.
        gt_boxes: (M, 4) boxes in the frame of an `image_size` image.
        thresholds: (T,) τ values.
        protocol, image_size: see `max_box_acc`.
    """
    check_protocol(protocol)
    if protocol == "wsolevaluation":
        return wsolevaluation.sweep_ious(heatmap, gt_boxes, thresholds, image_size)
    return _component_sweep_ious(_at_size(heatmap, image_size), gt_boxes, thresholds)


def _at_size(heatmap, image_size):
    """The map resized (bilinear) to `image_size` (H, W) when it differs."""
    heatmap = np.asarray(heatmap, np.float64)
    if image_size is None or tuple(heatmap.shape[:2]) == tuple(image_size) or heatmap.size == 0:
        return heatmap
    return cv2.resize(heatmap, (int(image_size[1]), int(image_size[0])),
                      interpolation=cv2.INTER_LINEAR)


def _component_sweep_ious(heatmap, gt_boxes, thresholds):
    """`sweep_ious` of the "tfcaf" protocol (map at image size)."""
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


def max_box_acc(heatmaps, gt_boxes, version=1, protocol="wsolevaluation",
                image_size=None, thresholds=None):
    """MaxBoxAcc (Choe et al., CVPR 2020).

    Version 1: max over τ of GT-known accuracy at IoU 0.5, largest component
    (contour). Version 2: boxes of all components (contours), best match,
    the max over τ taken per IoU threshold in {0.3, 0.5, 0.7}, then averaged.
    With protocol "wsolevaluation" the counts equal clovaai/wsolevaluation's
    (`tfcaf.metrics.wsolevaluation`).

    Args:
        heatmaps: (N, h, w) raw maps at any resolution, or a list of 2-D maps.
        gt_boxes: N arrays (M_i, 4) of (x0, y0, x1, y1) as the dataset gives
            them, in the frame of an `image_size` image; -1 rows are padding.
        version: 1 or 2.
        protocol: "wsolevaluation" or "tfcaf".
        image_size: (H, W) of the images (default: each map's own size).
        thresholds: τ values (default 0, 0.01, ..., 0.99).

    Returns:
        dict with "max_box_acc" in [0, 1], "best_threshold" (v1) or
        "per_iou" (v2).
    """
    if version not in (1, 2):
        raise TfcafError(f"MaxBoxAcc version must be 1 or 2, got {version!r}")
    thresholds = MAXBOXACC_THRESHOLDS if thresholds is None else np.asarray(thresholds)
    ious = np.stack([sweep_ious(h, g, thresholds, protocol, image_size)[version - 1]
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


def _protocol_maps(maps, heatmaps, protocol):
    """What `protocol` thresholds: wsolevaluation the raw maps, as its code
    takes them; tfcaf the heatmaps at image size."""
    return maps if protocol == "wsolevaluation" else heatmaps


def box_ious(maps, heatmaps, gt_boxes, cam_threshold=0.2, box_protocol="wsolevaluation",
             image_size=None):
    """Per image, the best IoU of the box at τ (`box_iou_at`): {"iou": (N,)}.
    maps (N, h, w) raw, heatmaps (N, H, W), gt_boxes (N, M, 4)."""
    chosen = _protocol_maps(maps, heatmaps, box_protocol)
    return {"iou": np.array([box_iou_at(m, g, cam_threshold, box_protocol, image_size)
                             for m, g in zip(chosen, gt_boxes)], np.float64)}


def box_sweep_counts(maps, heatmaps, gt_boxes, box_protocol="wsolevaluation",
                     image_size=None):
    """The registry's batch function of MaxBoxAcc: per batch, how many
    images hit at each τ of `MAXBOXACC_THRESHOLDS` (T), so a pass keeps
    counts, not N × T IoUs: {"v1_hits": (1, T) largest box at IoU ≥ 0.5,
    "v2_hits": (1, 3, T) best box at each IoU of `MAXBOXACC_V2_IOUS`,
    "images": (1,)}."""
    chosen = _protocol_maps(maps, heatmaps, box_protocol)
    sweeps = [sweep_ious(m, g, MAXBOXACC_THRESHOLDS, box_protocol, image_size)
              for m, g in zip(chosen, gt_boxes)]
    shape = (len(sweeps), len(MAXBOXACC_THRESHOLDS))
    largest = np.array([s[0] for s in sweeps]).reshape(shape)
    best = np.array([s[1] for s in sweeps]).reshape(shape)
    return {"v1_hits": (largest >= 0.5).sum(axis=0)[None],
            "v2_hits": np.stack([(best >= d).sum(axis=0) for d in MAXBOXACC_V2_IOUS])[None],
            "images": np.array([len(sweeps)])}


def localization_summary(values, correct, options):
    """The registry's summary of "iou": top-1 and GT-known localization."""
    accuracy = accuracy_from_ious(values["iou"], correct, options["iou_threshold"])
    return {k: accuracy[k] for k in ("top1_loc", "gt_known_loc")}


def max_box_acc_summary(values, correct, options):
    """The registry's summary of "maxboxacc" from the batches' counts
    (`box_sweep_counts`): v1 (and its τ) and v2, as `max_box_acc_from_ious`."""
    del correct, options
    images = values["images"].sum()
    v1 = values["v1_hits"].sum(axis=0) / images
    best = int(np.argmax(v1))
    v2 = (values["v2_hits"].sum(axis=0) / images).max(axis=1)
    return {"maxboxacc_v1": float(v1[best]), "best_threshold": float(MAXBOXACC_THRESHOLDS[best]),
            "maxboxacc_v2": float(np.mean(v2))}
