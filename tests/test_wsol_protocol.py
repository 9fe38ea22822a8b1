"""MaxBoxAcc under protocol "wsolevaluation" against a plain-loop port of
clovaai/wsolevaluation (commit 96f4b88: `inference.normalize_scoremap`,
`evaluation.resize_bbox`, `compute_bboxes_from_scoremaps`,
`calculate_multiple_iou`, `BoxEvaluator.accumulate/compute`), written here
from that code without the library's helpers. Equality is of counts."""

import cv2
import numpy as np
import pytest

from tfcaf.metrics import localization as loc


# ---- the reference, one image and one box pair at a time ----------------

def ref_normalize_scoremap(cam):
    if np.isnan(cam).any():
        return np.zeros_like(cam)
    if cam.min() == cam.max():
        return np.zeros_like(cam)
    cam -= cam.min()
    cam /= cam.max()
    return cam


def ref_resize_bbox(box, image_wh, resize_wh):
    x0, y0, x1, y1 = map(float, box)
    w, h = map(float, image_wh)
    nw, nh = map(float, resize_wh)
    return int(x0 * nw / w), int(y0 * nh / h), int(x1 * nw / w), int(y1 * nh / h)


def ref_boxes(scoremap, thresholds, multi_contour_eval):
    height, width = scoremap.shape
    scoremap_image = np.expand_dims((scoremap * 255).astype(np.uint8), 2)
    boxes_per_threshold = []
    for threshold in thresholds:
        _, binary = cv2.threshold(src=scoremap_image, thresh=int(threshold * np.max(scoremap_image)),
                                  maxval=255, type=cv2.THRESH_BINARY)
        contours = cv2.findContours(image=binary, mode=cv2.RETR_TREE,
                                    method=cv2.CHAIN_APPROX_SIMPLE)[0]
        if len(contours) == 0:
            boxes_per_threshold.append([[0, 0, 0, 0]])
            continue
        if not multi_contour_eval:
            contours = [max(contours, key=cv2.contourArea)]
        boxes = []
        for contour in contours:
            x, y, w, h = cv2.boundingRect(contour)
            boxes.append([x, y, min(x + w, width - 1), min(y + h, height - 1)])
        boxes_per_threshold.append(boxes)
    return boxes_per_threshold


def ref_iou(a, b):
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0]) + 1) * \
        max(0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    union = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - inter
    return 0.0 if union <= 0 else inter / union


def ref_num_correct(cams, gt_boxes, image_sizes_hw, thresholds, version):
    """{δ: (T,) images correct at each τ}, as BoxEvaluator counts them."""
    deltas = [50] if version == 1 else [30, 50, 70]
    num_correct = {d: np.zeros(len(thresholds)) for d in deltas}
    for cam, boxes, (h, w) in zip(cams, gt_boxes, image_sizes_hw):
        cam = cv2.resize(np.asarray(cam).astype(np.float64), (224, 224),
                         interpolation=cv2.INTER_CUBIC)
        scoremap = ref_normalize_scoremap(cam)
        gt = [ref_resize_bbox(b, (w, h), (224, 224)) for b in boxes]
        per_threshold = ref_boxes(scoremap, thresholds, multi_contour_eval=version == 2)
        best = [max(ref_iou(p, g) for p in predicted for g in gt) for predicted in per_threshold]
        for d in deltas:
            num_correct[d][np.where(np.asarray(best) >= d / 100)[0]] += 1
    return num_correct


# ---- maps and boxes -----------------------------------------------------

def _maps_and_boxes(size, image_hw, rng):
    """Maps at `size` with holes, several blobs, constant and NaN maps, and
    boxes touching the image border, for images of `image_hw`."""
    h, w = image_hw
    yy, xx = np.mgrid[0:size[0], 0:size[1]]
    yy, xx = yy / size[0], xx / size[1]
    maps, boxes = [], []
    for i in range(14):
        cy, cx = rng.uniform(0.1, 0.9, 2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / rng.uniform(0.005, 0.05))
        kind = i % 7
        if kind == 1:  # a ring: a contour with a hole
            r = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
            blob = np.exp(-((r - 0.25) ** 2) / 0.004)
        elif kind == 2:  # several blobs of different strength
            for _ in range(3):
                oy, ox = rng.uniform(0, 1, 2)
                blob = blob + rng.uniform(0.3, 1.0) * np.exp(-((yy - oy) ** 2 + (xx - ox) ** 2)
                                                            / 0.01)
        elif kind == 3:  # 0.5 survives bicubic resizing exactly: stays constant
            blob = np.full(size, 0.5)
        elif kind == 4:
            blob = blob.copy()
            blob[size[0] // 2, size[1] // 3] = np.nan
        elif kind == 5:  # blocky noise: many contours, ties in area
            blob = cv2.resize(rng.random((max(2, size[0] // 4), max(2, size[1] // 4))),
                              size[::-1], interpolation=cv2.INTER_NEAREST)
        maps.append(blob + (0 if kind in (3, 4) else 0.05 * rng.random(size)))
        x0, y0 = rng.uniform(0, w * 0.6), rng.uniform(0, h * 0.6)
        box = [x0, y0, min(w, x0 + rng.uniform(w * 0.1, w * 0.7)),
               min(h, y0 + rng.uniform(h * 0.1, h * 0.7))]
        if i % 3 == 0:  # touching the border
            box = [0.0, box[1], float(w), float(h)]
        extra = [[rng.uniform(0, w / 2), rng.uniform(0, h / 2), w - 1.0, h - 1.0]]
        boxes.append(np.array([box] + (extra if i % 4 == 1 else [])))
    return maps, boxes


@pytest.mark.parametrize("map_size,image_hw", [((7, 7), (224, 224)), ((14, 14), (300, 400)),
                                               ((28, 20), (64, 48)), ((224, 224), (224, 224))])
@pytest.mark.parametrize("version", [1, 2])
def test_counts_equal_the_reference(map_size, image_hw, version):
    rng = np.random.default_rng(map_size[0] * 100 + version)
    maps, boxes = _maps_and_boxes(map_size, image_hw, rng)
    thresholds = np.arange(0, 1, 0.01)
    expected = ref_num_correct(maps, boxes, [image_hw] * len(maps), thresholds, version)
    sweeps = np.stack([loc.sweep_ious(m, b, thresholds, "wsolevaluation", image_hw)[version - 1]
                       for m, b in zip(maps, boxes)])
    for delta, counts in expected.items():
        np.testing.assert_array_equal((sweeps >= delta / 100).sum(axis=0), counts)
    got = loc.max_box_acc(maps, boxes, version=version, image_size=image_hw)
    reference = np.mean([counts.max() / len(maps) for counts in expected.values()])
    assert got["max_box_acc"] == reference
    assert 0.0 < got["max_box_acc"] < 1.0


def test_fine_thresholds_and_padded_boxes_equal_the_reference():
    rng = np.random.default_rng(5)
    maps, boxes = _maps_and_boxes((14, 14), (224, 224), rng)
    maps, boxes = maps[:7], boxes[:7]
    thresholds = np.arange(0, 1, 0.001)
    expected = ref_num_correct(maps, boxes, [(224, 224)] * len(maps), thresholds, 1)[50]
    padded = [np.concatenate([b, -np.ones((2, 4))]) for b in boxes]
    got = loc.max_box_acc(maps, padded, thresholds=thresholds, image_size=(224, 224))
    assert got["max_box_acc"] == expected.max() / len(maps)
    assert got["best_threshold"] == thresholds[int(np.argmax(expected))]


def test_fixed_threshold_localization_uses_the_same_box_rule():
    rng = np.random.default_rng(9)
    maps, boxes = _maps_and_boxes((14, 14), (96, 96), rng)
    expected = ref_num_correct(maps, boxes, [(96, 96)] * len(maps), [0.2], 1)[50][0]
    result = loc.localization_accuracy(maps, boxes, correct=[True] * len(maps), threshold=0.2,
                                       image_size=(96, 96))
    assert result["gt_known_loc"] * len(maps) == expected


def test_degenerate_map_gives_the_reference_zero_box():
    # A constant map has no contour: box (0, 0, 0, 0), whose inclusive area
    # 1 still overlaps a GT box at the corner.
    tiny = np.array([[0, 0, 1, 1]])  # at 224: (0, 0, 1, 1), 4 pixels; IoU 1/4
    assert loc.sweep_ious(np.ones((7, 7)), tiny, [0.5], image_size=(224, 224))[0][0] == 0.25


def test_unknown_protocol_is_a_user_error():
    from tfcaf.errors import TfcafError
    with pytest.raises(TfcafError, match="box protocol"):
        loc.max_box_acc([np.ones((4, 4))], [np.array([[0, 0, 2, 2]])], protocol="cam")
