"""Box extraction, IoU and localization accuracy against hand computations
and an independent connected-component labelling (scipy.ndimage)."""

import cv2
import numpy as np
import pytest
from scipy import ndimage

from tfcaf.metrics import localization as loc


def _two_blobs():
    heatmap = np.zeros((10, 12))
    heatmap[2:6, 1:4] = 1.0      # 12 pixels: box (1, 2, 4, 6)
    heatmap[8, 9] = 0.5          # 1 pixel: box (9, 8, 10, 9)
    heatmap[7, 10] = 0.3         # touches (8, 9) diagonally: same component
    return heatmap


def test_component_boxes_by_hand():
    boxes = loc.component_boxes(_two_blobs(), threshold=0.2)
    np.testing.assert_array_equal(boxes, [[1, 2, 4, 6], [9, 7, 11, 9]])
    np.testing.assert_array_equal(loc.largest_component_box(_two_blobs(), 0.6), [1, 2, 4, 6])
    assert len(loc.component_boxes(_two_blobs(), threshold=0.4)) == 2
    assert len(loc.component_boxes(_two_blobs(), threshold=0.6)) == 1


@pytest.mark.parametrize("heatmap", [np.zeros((5, 5)), np.full((5, 5), 0.7),
                                     np.full((5, 5), np.nan), np.zeros((0, 0)),
                                     np.where(np.eye(5) > 0, np.nan, 1.0)])
def test_degenerate_maps_give_no_box_and_count_as_misses(heatmap):
    assert loc.largest_component_box(heatmap) is None
    result = loc.localization_accuracy([heatmap], [np.array([[0, 0, 5, 5]])], [True],
                                       protocol="tfcaf")
    assert result["gt_known_loc"] == 0.0 and result["top1_loc"] == 0.0


def test_degenerate_raw_maps_are_exactly_those_with_an_all_zero_heatmap():
    from tfcaf.caf.heatmaps import normalize
    from tfcaf.metrics.degenerate import degenerate_maps
    rng = np.random.default_rng(0)
    maps = rng.random((7, 4, 5)).astype(np.float32)
    maps[1] = 0.0
    maps[2] = 3.5
    maps[3] = 2.0 + np.float32(1e-13) * np.arange(20).reshape(4, 5)  # rounding only
    maps[4, 0, 0] = np.nan
    maps[5, 1, 1] = -np.inf
    maps[6] = 1e-3 * maps[6]                                         # small, not constant
    all_zero = ~normalize(maps).numpy().reshape(7, -1).any(axis=1)
    np.testing.assert_array_equal(all_zero, [False, True, True, True, True, True, False])
    np.testing.assert_array_equal(degenerate_maps(maps), all_zero)


def test_iou_by_hand():
    np.testing.assert_allclose(loc.iou(np.array([0, 0, 2, 2]), [[1, 1, 3, 3], [0, 0, 2, 2],
                                                              [5, 5, 6, 6]]), [1 / 7, 1, 0])


def test_localization_accuracy_by_hand():
    heatmaps = [_two_blobs()] * 3
    gt = [np.array([[1, 2, 4, 6], [-1, -1, -1, -1]]),      # exact
          np.array([[1, 2, 4, 9]]),                          # IoU 12/21 = 0.571
          np.array([[0, 0, 4, 9]])]                          # IoU 12/36 = 0.333
    result = loc.localization_accuracy(heatmaps, gt, correct=[True, False, True],
                                       protocol="tfcaf")
    np.testing.assert_array_equal(result["hits"], [True, True, False])
    assert result["gt_known_loc"] == pytest.approx(2 / 3)
    assert result["top1_loc"] == pytest.approx(1 / 3)


def _reference_boxes(heatmap, tau):
    """All component boxes with scipy's labelling (8-connectivity)."""
    norm = (heatmap - heatmap.min()) / (heatmap.max() - heatmap.min())
    labels, _ = ndimage.label(norm >= tau, structure=np.ones((3, 3)))
    boxes = [(s[1].start, s[0].start, s[1].stop, s[0].stop) for s in ndimage.find_objects(labels)]
    sizes = [np.sum(labels == i + 1) for i in range(len(boxes))]
    return [boxes[i] for i in np.argsort(-np.array(sizes), kind="stable")]


def _reference_iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / union


def test_tfcaf_protocol_max_box_acc_equals_brute_force_sweep():
    rng = np.random.default_rng(0)
    heatmaps, gt = [], []
    for _ in range(12):
        x0, y0 = rng.integers(0, 12, 2)
        box = np.array([x0, y0, x0 + rng.integers(4, 12), y0 + rng.integers(4, 12)])
        heatmap = rng.random((24, 24))
        heatmap[box[1]:box[3], box[0]:box[2]] += rng.uniform(0.0, 1.5)  # planted, varied strength
        heatmaps.append(cv2.GaussianBlur(heatmap, (5, 5), 1.0))
        gt.append(box[None])
    thresholds = np.arange(0.0, 1.0, 0.05)
    best_v1, best_v2 = 0.0, {d: 0.0 for d in (0.3, 0.5, 0.7)}
    for tau in thresholds:
        ious_first, ious_all = [], []
        for h, g in zip(heatmaps, gt):
            boxes = _reference_boxes(h, tau)
            ious_first.append(_reference_iou(boxes[0], g[0]) if boxes else 0.0)
            ious_all.append(max([_reference_iou(b, g[0]) for b in boxes], default=0.0))
        best_v1 = max(best_v1, np.mean(np.array(ious_first) >= 0.5))
        for d in best_v2:
            best_v2[d] = max(best_v2[d], np.mean(np.array(ious_all) >= d))
    v1 = loc.max_box_acc(heatmaps, gt, version=1, protocol="tfcaf", thresholds=thresholds)
    v2 = loc.max_box_acc(heatmaps, gt, version=2, protocol="tfcaf", thresholds=thresholds)
    assert v1["max_box_acc"] == pytest.approx(best_v1)
    assert v2["max_box_acc"] == pytest.approx(np.mean(list(best_v2.values())))
    assert 0.0 < v1["max_box_acc"] < 1.0


def test_max_box_acc_from_batch_counts_equals_from_all_ious():
    # The evaluation keeps per-batch hit counts; they give what the IoUs of
    # the whole set give.
    rng = np.random.default_rng(3)
    maps = rng.random((10, 12, 12))
    boxes = np.array([[[2, 2, 9, 8]]] * 10, np.float32)
    parts = [loc.box_sweep_counts(maps[s], maps[s], boxes[s], "wsolevaluation", (48, 48))
             for s in (slice(0, 3), slice(3, 10))]
    values = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    summary = loc.max_box_acc_summary(values, None, {})
    v1 = loc.max_box_acc(maps, boxes, 1, image_size=(48, 48))
    v2 = loc.max_box_acc(maps, boxes, 2, image_size=(48, 48))
    assert summary == {"maxboxacc_v1": v1["max_box_acc"], "best_threshold": v1["best_threshold"],
                       "maxboxacc_v2": v2["max_box_acc"]}
