"""PxAP equals clovaai/wsolevaluation's `MaskEvaluator` (golden file
tests/data/golden/wsolevaluation_masks.npz, written by
tools/make_wsol_mask_golden.py running the reference's own code on planted
heatmaps and OpenImages-style mask PNGs), and masks are read as its
`get_mask` reads them."""

import cv2
import numpy as np
import pytest

from golden_files import load
from tfcaf import metrics
from tfcaf.data import masks as mask_io
from tfcaf.data.digits import DigitsConfig, load_digits
from tfcaf.data.folder import load_folder
from tfcaf.errors import TfcafError
from tfcaf.metrics import pixel_precision as px

META, GOLDEN = load("wsolevaluation_masks")
HEATMAPS = GOLDEN["heatmap_codes"] / np.float32(4096)


@pytest.mark.parametrize("case", META, ids=lambda c: c["name"])
def test_pxap_equals_mask_evaluator(case):
    name, interval = case["name"], case["settings"]["interval"]
    histograms = px.mask_histograms(HEATMAPS, GOLDEN["gt_masks"], interval)
    # Counts: exactly equal.
    np.testing.assert_array_equal(histograms["foreground"].sum(0),
                                  GOLDEN[f"{name}.gt_true_score_hist"])
    np.testing.assert_array_equal(histograms["background"].sum(0),
                                  GOLDEN[f"{name}.gt_false_score_hist"])
    # The AP from the same counts: float64 rounding of a sum of ~1000 terms.
    assert metrics.pxap(HEATMAPS, GOLDEN["gt_masks"], interval) * 100 == pytest.approx(
        float(GOLDEN[f"{name}.auc_percent"]), rel=1e-12)


def _write_instances(folder):
    """The golden instance and ignore PNGs, as the reference read them."""
    rows = []
    for i in range(len(HEATMAPS)):
        for j, mask in enumerate(GOLDEN[f"instances.{i}"]):
            cv2.imwrite(str(folder / f"m{i}_{j}.png"), mask.astype(np.uint8) * 255)
            rows.append((i, f"m{i}_{j}.png", f"ig{i}.png" if j == 0 else ""))
        cv2.imwrite(str(folder / f"ig{i}.png"), GOLDEN["ignore"][i].astype(np.uint8) * 255)
    return rows


def test_masks_read_as_get_mask(tmp_path):
    rows = _write_instances(tmp_path)
    for i, reference in enumerate(GOLDEN["gt_masks"]):
        instances = [str(tmp_path / m) for k, m, _ in rows if k == i]
        mask = mask_io.read_mask(instances, str(tmp_path / f"ig{i}.png"), (224, 224))
        np.testing.assert_array_equal(mask, reference)


def test_folder_masks_csv_gives_pipeline_masks(tmp_path):
    (tmp_path / "obj").mkdir()
    rows = _write_instances(tmp_path)
    lines = ["path,mask_path,ignore_path"]
    for i in range(len(HEATMAPS)):
        cv2.imwrite(str(tmp_path / "obj" / f"{i}.png"), np.zeros((224, 224, 3), np.uint8))
    lines += [f"obj/{i}.png,{m},{ig}" for i, m, ig in rows]
    (tmp_path / "masks.csv").write_text("\n".join(lines) + "\n")
    data = load_folder(str(tmp_path), image_size=224)
    np.testing.assert_array_equal(data.gt_masks(np.arange(len(data))), GOLDEN["gt_masks"])
    # At another size: nearest-neighbour resizing of each file, as the reference does.
    small = load_folder(str(tmp_path), image_size=56).gt_masks([0])[0]
    expected = cv2.resize(GOLDEN["instances.0"][0].astype(np.float32) * 255, (56, 56),
                          interpolation=cv2.INTER_NEAREST) > 0.5
    np.testing.assert_array_equal(small == 1, expected)


def test_folder_masks_csv_errors_name_the_file(tmp_path):
    (tmp_path / "obj").mkdir()
    cv2.imwrite(str(tmp_path / "obj" / "a.png"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "masks.csv").write_text("path,mask\nobj/a.png,m.png\n")
    with pytest.raises(TfcafError, match="masks.csv: header"):
        load_folder(str(tmp_path))
    (tmp_path / "masks.csv").write_text("path,mask_path,ignore_path\nobj/b.png,m.png,\n")
    with pytest.raises(TfcafError, match="obj/b.png .*masks.csv:2"):
        load_folder(str(tmp_path))


def test_average_precision_by_hand():
    # Scores 0.9 (fg), 0.8 (bg), 0.4 (fg), 0.1 (bg): precision 1 at recall
    # 1/2, 2/3 at recall 1: AP = 1/2 · 1 + 1/2 · 2/3 = 5/6.
    heat = np.array([[[0.9, 0.8], [0.4, 0.1]]], np.float32)
    mask = np.array([[[1, 0], [1, 0]]], np.uint8)
    assert px.pxap(heat, mask, 0.01) == pytest.approx(5 / 6)
    ignored = np.array([[[1, 255], [1, 0]]], np.uint8)      # the 0.8 pixel ignored
    assert px.pxap(heat, ignored, 0.01) == pytest.approx(1.0)
    assert px.pxap(mask.astype(np.float32), mask) == pytest.approx(1.0)


def test_bad_inputs_are_named():
    with pytest.raises(TfcafError, match=r"heatmaps \(1, 2, 2\) and masks \(1, 3, 3\)"):
        px.pxap(np.zeros((1, 2, 2)), np.zeros((1, 3, 3)))
    with pytest.raises(TfcafError, match=r"in \[0, 1\]"):
        px.pxap(np.full((1, 2, 2), 2.0), np.ones((1, 2, 2)))
    with pytest.raises(TfcafError, match="no foreground"):
        px.pxap(np.zeros((1, 2, 2)), np.zeros((1, 2, 2)))


def test_digits_masks_are_the_ink_inside_the_tight_box(digits_dir):
    data = load_digits(digits_dir, "test", config=DigitsConfig(), image_size=96)
    chosen = data.evenly_spaced_indices(6)
    for mask, index in zip(data.gt_masks(chosen), chosen):
        ys, xs = np.nonzero(mask == 1)
        box = data.boxes[index][0]
        np.testing.assert_array_equal([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], box)
        assert set(np.unique(mask)) <= {0, 1}


def test_batches_of_a_pass_add_up_to_the_whole_set():
    masks = GOLDEN["gt_masks"]
    parts = [px.batch_histograms(HEATMAPS[s], masks[s]) for s in (slice(0, 2), slice(2, 5))]
    values = {k: np.concatenate([p[k] for p in parts]) for k in ("foreground", "background")}
    assert values["foreground"].shape == (2, 1002)
    assert px.pxap_summary(values, None, {})["pxap"] == px.pxap(HEATMAPS, masks)
