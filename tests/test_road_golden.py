"""ROAD equals pytorch-grad-cam 1.5.7's (metrics/road.py) on
tools/golden_net.py, from the golden file tools/make_torch_metrics_golden.sh
wrote with the reference itself (tests/data/golden/torch_metrics.npz): the
removed pixels of every percentile, the imputed images, the per-percentile
score changes and their averages, with the reference's noise draws (its own
torch.randn_like values for the single-percentile cases, a stored noise
field served to it for the averaged ones).

Tolerances: the imputation is the same float64 sparse solve rounded once to
float32 (2 float32 rounding steps of the largest pixel). Scores are softmax
probabilities (<= 1) computed by TF here and by torch there, each within a
couple of float32 rounding steps of 1; a difference of two such scores, and
a mean or half-difference of those, is within 4 steps (4 eps)."""

import numpy as np
import pytest

from golden_files import FLOAT32_EPS, assert_maps_equal, keras_net, load
from tfcaf.errors import TfcafError
from tfcaf.metrics import remove_and_debias as rd

META, GOLDEN = load("torch_metrics")
IDS = np.array([0, 1, 2, 3], np.int32)
PROBABILITY_ATOL = 4 * FLOAT32_EPS


def _case(name):
    return next(c for c in META if c["name"] == name)


def _classifier():
    model = keras_net("classifier")
    return lambda batch: model(batch)


SINGLE = [("ROADMostRelevantFirst.p80.softmax", "morf", 80),
          ("ROADLeastRelevantFirst.p20.softmax", "lerf", 20)]


def test_imputation_equals_noisy_linear_imputer():
    name = "ROADMostRelevantFirst.p80.softmax"
    removed = rd.removed_pixels(GOLDEN["heatmaps"], 80, "morf")
    imputed = rd.noisy_linear_imputation(GOLDEN["images"], removed, noise=0.01,
                                         draws=GOLDEN[f"{name}.draws_nhwc"])
    expected = GOLDEN[f"{name}.imputed_nhwc"]
    assert_maps_equal(imputed, expected, ulps=2)
    np.testing.assert_array_equal(imputed[~removed], GOLDEN["images"][~removed])
    assert np.abs(imputed - GOLDEN["images"])[removed].max() > 0.05


@pytest.mark.parametrize("name", [c["name"] for c in META if c["method"].startswith("ROAD")])
def test_removed_pixels_are_the_references(name):
    case = _case(name)
    heatmaps = GOLDEN[case["settings"].get("heatmaps", "heatmaps")]
    if "percentile" in case["settings"]:
        order = "lerf" if "Least" in name else "morf"
        counts = rd.removed_pixels(heatmaps, case["settings"]["percentile"], order).sum((1, 2))
        np.testing.assert_array_equal(counts, GOLDEN[f"{name}.removed_counts"])
        return
    for order in ("morf", "lerf"):
        if f"{name}.{order}_removed_counts" not in GOLDEN:
            continue
        counts = np.stack([rd.removed_pixels(heatmaps, p, order).sum((1, 2))
                           for p in case["settings"]["percentiles"]], axis=1)
        np.testing.assert_array_equal(counts, GOLDEN[f"{name}.{order}_removed_counts"])


def test_ties_at_the_threshold_all_go():
    # Image 2 is 64 plateaus of 16 pixels: the reference removes whole plateaus.
    counts = GOLDEN["ROADCombined.softmax.morf_removed_counts"][2]
    assert (counts % 16 == 0).all() and counts[0] == 928


@pytest.mark.parametrize("name, order, percentile", SINGLE)
def test_single_percentile_with_the_references_torch_draws(name, order, percentile):
    result = rd.road(_classifier(), GOLDEN["images"], GOLDEN["heatmaps"], IDS,
                     percentiles=[percentile], order=order, noise=0.01,
                     draws=GOLDEN[f"{name}.draws_nhwc"])
    np.testing.assert_allclose(result["original_scores"], GOLDEN[f"{name}.scores_before"],
                               rtol=0, atol=PROBABILITY_ATOL)
    np.testing.assert_allclose(result["road"], GOLDEN[f"{name}.scores"], rtol=0,
                               atol=PROBABILITY_ATOL)
    np.testing.assert_allclose(result[f"{order}_curve"][:, 0], GOLDEN[f"{name}.scores"],
                               rtol=0, atol=PROBABILITY_ATOL)


@pytest.mark.parametrize("name, order", [("ROADMostRelevantFirstAverage.softmax", "morf"),
                                         ("ROADLeastRelevantFirstAverage.softmax", "lerf"),
                                         ("ROADCombined.softmax", "combined")])
def test_averages_and_combined_equal_the_reference(name, order):
    result = rd.road(_classifier(), GOLDEN["images"], GOLDEN["heatmaps"], IDS,
                     percentiles=_case(name)["settings"]["percentiles"], order=order,
                     noise=0.01, draws=GOLDEN["noise_field"])
    np.testing.assert_allclose(result["road"], GOLDEN[f"{name}.scores"], rtol=0,
                               atol=PROBABILITY_ATOL)
    for curve in ("morf_curve", "lerf_curve"):
        if f"{name}.{curve}" in GOLDEN:
            np.testing.assert_allclose(result[curve], GOLDEN[f"{name}.{curve}"], rtol=0,
                                       atol=PROBABILITY_ATOL)
    assert result["road_mean"] == pytest.approx(float(np.mean(GOLDEN[f"{name}.scores"])),
                                                abs=PROBABILITY_ATOL)
    if order == "combined":
        np.testing.assert_array_equal(result["road"], (result["lerf"] - result["morf"]) / 2)


def test_raw_logit_case_from_the_building_blocks():
    # ClassifierOutputTarget: the change of the raw logit, not a probability.
    name = "ROADCombined.logit"
    model = keras_net("classifier")
    images, heatmaps = GOLDEN["images"], GOLDEN["heatmaps"]
    before = model(images).numpy()[np.arange(4), IDS]
    curves = {}
    for order in ("morf", "lerf"):
        rows = []
        for p in rd.PERCENTILES:
            imputed = rd.noisy_linear_imputation(images, rd.removed_pixels(heatmaps, p, order),
                                                 draws=GOLDEN["noise_field"])
            rows.append(model(imputed).numpy()[np.arange(4), IDS] - before)
        curves[order] = np.float32(rows)                                 # (P, N)
        # Logits (|z| <= 1.07) by TF vs torch, each within a couple of float32
        # steps of the largest: a difference within 4 steps (about 2 seen).
        atol = 4 * FLOAT32_EPS * np.abs(GOLDEN["logits"]).max()
        np.testing.assert_allclose(curves[order].T, GOLDEN[f"{name}.{order}_curve"],
                                   rtol=0, atol=atol)
    combined = (curves["lerf"].mean(0) - curves["morf"].mean(0)) / 2
    np.testing.assert_allclose(combined, GOLDEN[f"{name}.scores"], rtol=0, atol=atol)


def test_every_pixel_removed_gives_pure_noise_as_the_reference():
    # Grad-CAM maps of images 1 and 2 are 0 on > 90% of pixels: h >= 0 everywhere.
    name = "ROADMostRelevantFirst.p10.gradcam"
    removed = rd.removed_pixels(GOLDEN["heatmaps.gradcam"], 10, "morf")
    assert removed[1].all() and removed[2].all() and not removed[0].all()
    imputed = rd.noisy_linear_imputation(GOLDEN["images"], removed,
                                         draws=GOLDEN["noise_field"])
    np.testing.assert_array_equal(imputed[1], np.float32(0.01) * GOLDEN["noise_field"][1])
    result = rd.road(_classifier(), GOLDEN["images"], GOLDEN["heatmaps.gradcam"], IDS,
                     percentiles=[10], order="morf", draws=GOLDEN["noise_field"])
    np.testing.assert_allclose(result["road"], GOLDEN[f"{name}.scores"], rtol=0,
                               atol=PROBABILITY_ATOL)


def test_retrieval_net_scores_cosine_to_the_unperturbed_embedding():
    model = keras_net("embedding")
    images, heatmaps, field = GOLDEN["images"], GOLDEN["heatmaps"], GOLDEN["noise_field"]
    percentiles = (30, 70)
    result = rd.road(lambda batch: model(batch), images, heatmaps, embedding=True,
                     percentiles=percentiles, order="combined", draws=field)
    unit = lambda e: e / np.linalg.norm(e, axis=1, keepdims=True)  # noqa: E731
    reference = unit(model(images).numpy().astype(np.float64))
    np.testing.assert_allclose(result["original_scores"], 1.0, rtol=0, atol=4 * FLOAT32_EPS)
    for order in ("morf", "lerf"):
        expected = []
        for p in percentiles:
            imputed = rd.noisy_linear_imputation(images, rd.removed_pixels(heatmaps, p, order),
                                                 draws=field)
            cosine = (unit(model(imputed).numpy().astype(np.float64)) * reference).sum(1)
            expected.append(cosine - 1.0)
        expected = np.array(expected).T                                 # (N, P)
        # float32 cosines (<= 1: normalisation, 8-term sum) minus the float32
        # score of the image itself (1 within a step), vs float64 by hand on
        # the same embeddings: within 6 steps (about 2.3 seen).
        np.testing.assert_allclose(result[f"{order}_curve"], expected, rtol=0,
                                   atol=6 * FLOAT32_EPS)
        assert (expected < 0).any()
    np.testing.assert_allclose(result["road"], (result["lerf"] - result["morf"]) / 2)


def test_batches_of_batch_size_and_seeded_default_noise():
    calls = []
    model = keras_net("classifier")

    def predict(batch):
        calls.append(len(batch))
        return model(batch)

    args = (GOLDEN["images"], GOLDEN["heatmaps"], IDS)
    first = rd.road(predict, *args, percentiles=(25, 50, 75), batch_size=5)
    # 1 call for the 4 originals, then 2 orders x 3 percentiles x 4 images in 5s.
    assert calls == [4] + [5] * 4 + [4]
    again = rd.road(predict, *args, percentiles=(25, 50, 75), batch_size=64)
    np.testing.assert_array_equal(first["road"], again["road"])
    other = rd.road(predict, *args, percentiles=(25, 50, 75), seed=1)
    assert not np.array_equal(first["road"], other["road"])
    assert first["morf_curve"].shape == first["lerf_curve"].shape == (4, 3)
    only = rd.road(predict, *args, percentiles=(25, 50), order="lerf")
    assert "morf_curve" in only and only["road"].shape == (4,)  # both orders always


@pytest.mark.parametrize("kwargs, message", [
    ({"heatmaps": np.zeros((4, 16, 16))}, "heatmaps must be"),
    ({"order": "both"}, "unknown ROAD order"),
    ({"percentiles": (0, 50)}, r"percentiles must be in \(0, 100\)"),
    ({"percentiles": (50, 100)}, r"percentiles must be in \(0, 100\)"),
    ({"percentiles": ()}, r"percentiles must be in \(0, 100\)"),
    ({"targets": None}, "targets must be"),
    ({"heatmaps": np.full((4, 32, 32), np.nan)}, "NaN"),
    ({"noise": -1.0}, "noise must be"),
])
def test_bad_arguments_raise_tfcaf_error(kwargs, message):
    args = {"images": GOLDEN["images"], "heatmaps": GOLDEN["heatmaps"], "targets": IDS}
    args.update(kwargs)
    with pytest.raises(TfcafError, match=message):
        rd.road(_classifier(), args.pop("images"), args.pop("heatmaps"), args.pop("targets"),
                **args)


def test_bad_imputation_arguments_raise_tfcaf_error():
    images = GOLDEN["images"]
    with pytest.raises(TfcafError, match="removed must be"):
        rd.noisy_linear_imputation(images, np.zeros((4, 16, 16), bool))
    with pytest.raises(TfcafError, match="draws must have"):
        rd.noisy_linear_imputation(images, np.zeros((4, 32, 32), bool), draws=np.zeros(3))
    with pytest.raises(TfcafError, match="order must be"):
        rd.removed_pixels(GOLDEN["heatmaps"], 50, "combined")
