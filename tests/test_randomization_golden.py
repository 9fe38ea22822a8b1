"""The pointing game equals TorchRay's `PointingGame` (torch_metrics.npz,
from its 1.0.0.2 sdist) and Quantus 0.6.0's `PointingGame` (quantus.npz);
the sanity check's similarity equals Quantus's `MPRT` (top_down, Spearman
of absolute normalised maps) given the same explanations; and the sanity
check separates a method that ignores the weights (an edge detector) from
Grad-CAM."""

import cv2
import keras
import numpy as np
import pytest

from golden_files import load
from tfcaf.evaluation.adapters import KerasAdapter
from tfcaf.evaluation.sanity import randomization_check
from tfcaf.metrics import faithfulness as fm
from tfcaf.metrics import randomization
from tfcaf.models.layers import ImagePreprocessing

TORCH_META, TORCH = load("torch_metrics")
QUANTUS_META, QUANTUS = load("quantus")


@pytest.mark.parametrize("case", [c for c in TORCH_META if c["name"].startswith("Pointing")],
                         ids=lambda c: c["name"])
def test_pointing_game_equals_torchray(case):
    tolerance = case["settings"]["tolerance"]
    hits = fm.pointing_game(TORCH["pointing.heatmaps"], None, tolerance, protocol="torchray",
                            gt_masks=TORCH["pointing.masks"])["hits"]
    np.testing.assert_array_equal(hits, TORCH[f"{case['name']}.hits"] == 1)
    # TorchRay's accuracy is the mean of its per-class hit rates.
    classes = TORCH["pointing.class_ids"]
    per_class = [hits[classes == c].mean() for c in range(case["settings"]["num_classes"])]
    np.testing.assert_allclose(per_class, TORCH[f"{case['name']}.class_accuracies"])
    assert np.mean(per_class) == pytest.approx(float(TORCH[f"{case['name']}.accuracy"]))


@pytest.mark.parametrize("name, maps, masks, absolute", [
    ("PointingGame.saliency.default", "heatmaps.saliency", "masks.squares", False),
    ("PointingGame.planted.default", "heatmaps.pointing", "masks.pointing", False),
    ("PointingGame.planted.abs", "heatmaps.pointing", "masks.pointing", True),
    ("PointingGame.nan.default", "heatmaps.pointing_nan", "masks.pointing_nan", False)])
def test_pointing_game_equals_quantus(name, maps, masks, absolute):
    heatmaps = np.abs(QUANTUS[maps]) if absolute else QUANTUS[maps]
    hits = fm.pointing_game(heatmaps, None, protocol="quantus",
                            gt_masks=QUANTUS[masks])["hits"]
    expected = QUANTUS[f"{name}.hits"].astype(bool)
    flat = heatmaps.reshape(len(expected), -1)
    empty = ~QUANTUS[masks].reshape(len(expected), -1).any(axis=1)
    # Quantus casts the NaN of an empty mask to True, and normalises by the
    # batch's maximum, so one NaN map makes every map of its batch miss;
    # tfcaf counts an empty mask a miss and scores each map on its own.
    finite = np.isfinite(flat).all(axis=1)
    checked = ~empty & (finite.all() | ~finite)
    np.testing.assert_array_equal(hits[checked], expected[checked])
    assert not hits[empty].any()
    for index in np.flatnonzero(~checked):  # by hand: a maximum inside the mask
        top = flat[index] == flat[index].max()
        assert hits[index] == (top & QUANTUS[masks][index].ravel()).any()


def test_sanity_similarity_equals_quantus_mprt():
    explanations = QUANTUS["MPRT.top_down.explanations"]      # original, then per layer
    scores = QUANTUS["MPRT.top_down.scores"]
    for layer in range(len(explanations)):
        np.testing.assert_allclose(
            randomization.spearman_per_image(explanations[0], explanations[layer]),
            scores[layer], rtol=0, atol=1e-12)


class _EdgesAdapter:
    """A KerasAdapter with one more method, "edges": the Sobel magnitude of
    the image, which reads no weight at all."""

    def __init__(self, adapter):
        self.adapter, self.model = adapter, adapter.model

    def maps(self, images, labels, method):
        if method != "edges":
            return self.adapter.maps(images, labels, method)
        grey = np.asarray(images, np.float32).mean(axis=-1)
        edges = np.stack([np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))
                          for g in grey])
        return edges, edges / edges.max(axis=(1, 2), keepdims=True)


def test_sanity_check_separates_an_edge_detector_from_gradcam():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((24, 24, 3))
    x = ImagePreprocessing("unit")(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="features")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (6, 24, 24, 3)).astype(np.float32)
    labels = np.arange(6) % 3
    rows = randomization_check(_EdgesAdapter(KerasAdapter(model)), images, labels,
                               ("edges", "gradcam"), stages=3)
    assert [r["edges"]["spearman"] for r in rows] == [pytest.approx(1.0)] * 3
    # Grad-CAM reads the weights: once the head and the features are
    # re-drawn its maps no longer rank the pixels as before.
    assert rows[-1]["gradcam"]["spearman"] < 0.5
