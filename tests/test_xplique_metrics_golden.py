"""tfcaf's reference protocols equal the references on tools/golden_net.py,
from tests/data/golden/xplique_metrics.npz (tools/make_xplique_metrics_golden.sh
ran the libraries themselves): xplique 2.0.2's Deletion, Insertion,
AverageDropMetric, AverageIncreaseMetric and MuFidelity (its own random
subsets replayed), pytorch-grad-cam 1.5.7's DropInConfidence and
IncreaseInConfidence (on the PyTorch port of the net); plus mufidelity on a
retrieval net against a hand computation and the pointing-game protocols on
planted maps.

Scores are softmax probabilities or cosines, all <= 1 (cosines may round
to 1 + 2 ulps): tolerances are float32 rounding steps of 1 (`EPS`)."""

import re

import numpy as np
import pytest
from scipy.stats import rankdata, spearmanr

from golden_files import keras_net, load
from tfcaf.errors import TfcafError
from tfcaf.metrics import faithfulness as fm
from tfcaf.metrics import faithfulness_protocols as protocols
from tfcaf.metrics import fidelity

META, GOLDEN = load("xplique_metrics")
EPS = float(np.finfo(np.float32).eps)
# One score's rounding: the same network, batched differently (xplique
# scores one step of all images per call, tfcaf the flattened grid), and
# for cosines xplique's dot / (|e| |t|) against tfcaf's l2_normalize.
SCORE_ULPS = 4
# PyTorch's convolutions and Keras', on the same weights.
TORCH_ULPS = 8


def _names(*metrics):
    return [c["name"] for c in META if c["metric"] in metrics]


def _case(name):
    case = next(c for c in META if c["name"] == name)
    embedding = case["target"] == "similarity"
    net = keras_net(case["network"])
    targets = None if embedding else GOLDEN[f"target_ids.{case['target']}"].astype(np.int32)
    substrate = (case["settings"].get("baseline_mode", 0.0),) * 3
    return (case, lambda batch: net(batch), GOLDEN[f"heatmaps.{case['heatmaps']}"], targets,
            dict(embedding=embedding, substrate=substrate))


@pytest.mark.parametrize("name", _names("Deletion", "Insertion"))
def test_deletion_insertion_equal_xplique(name):
    case, predict, heatmaps, targets, options = _case(name)
    settings = case["settings"]
    got = fm.deletion_insertion(predict, GOLDEN["images"], heatmaps, targets, protocol="xplique",
                                steps=settings["steps"], batch_size=64, **options,
                                max_percentage_perturbed=settings.get("max_percentage_perturbed"))
    key = case["metric"].lower()
    np.testing.assert_array_equal(got["counts"], GOLDEN[f"{name}.counts"])
    np.testing.assert_allclose(got[f"{key}_curve"], GOLDEN[f"{name}.curves"], rtol=0,
                               atol=SCORE_ULPS * EPS)
    # xplique averages the curves over images; the AUC is linear in them.
    np.testing.assert_allclose(got[f"{key}_curve"].mean(0), GOLDEN[f"{name}.mean_curve"],
                               rtol=0, atol=SCORE_ULPS * EPS)
    assert abs(got[key].mean() - GOLDEN[f"{name}.auc"]) <= SCORE_ULPS * EPS


@pytest.mark.parametrize("name", _names("AverageDropMetric", "AverageIncreaseMetric",
                                        "DropInConfidence", "IncreaseInConfidence"))
def test_average_drop_increase_equal_reference(name):
    case, predict, heatmaps, targets, options = _case(name)
    xplique = case["library"] == "xplique"
    got = fm.average_drop_increase(predict, GOLDEN["images"], heatmaps, targets,
                                   protocol="xplique" if xplique else "pytorch-grad-cam",
                                   batch_size=case["settings"].get("batch_size", 64), **options)
    base, after = ((GOLDEN[f"{name}.base"], GOLDEN[f"{name}.after"]) if xplique else
                   (GOLDEN[f"{name}.before"], GOLDEN[f"{name}.after"]))
    per_image = GOLDEN[f"{name}.per_image" if xplique else f"{name}.result"]
    ulps = SCORE_ULPS if xplique else TORCH_ULPS
    if "Drop" in case["metric"]:
        # Y − O is off by up to 2 · ulps; xplique then divides by Y + 1e-8.
        tolerance = 2 * ulps * EPS / (base.min() if xplique else 1.0)
        np.testing.assert_allclose(got["drop"], per_image, rtol=0, atol=tolerance)
        if xplique:
            assert abs(got["average_drop"] / 100 - GOLDEN[f"{name}.score"]) <= tolerance
    else:
        # The indicator is decided: O and Y are further apart than rounding.
        assert np.abs(after - base).min() > 2 * ulps * EPS
        np.testing.assert_array_equal(got["increase"], per_image == 1)
        if xplique:
            assert got["increase_in_confidence"] == pytest.approx(100 * GOLDEN[f"{name}.score"])


def test_pytorch_grad_cam_drop_is_absolute_and_xplique_relative():
    _, predict, heatmaps, targets, options = _case("gradcam.DropInConfidence.top1.unit")
    absolute = GOLDEN["gradcam.DropInConfidence.top1.unit.result"]
    before = GOLDEN["gradcam.DropInConfidence.top1.unit.before"]
    after = GOLDEN["gradcam.DropInConfidence.top1.unit.after"]
    np.testing.assert_allclose(absolute, np.maximum(0, before - after), rtol=0, atol=EPS)
    relative = fm.average_drop_increase(predict, GOLDEN["images"], heatmaps, targets,
                                        **options)["drop"]            # grad-cam++
    np.testing.assert_allclose(relative, absolute / before, rtol=0, atol=TORCH_ULPS * 3 * EPS)


def _rank_ambiguity(drops, tolerance):
    """Bound on how much a Spearman correlation can move when each drop may
    be off by `tolerance`: only pairs closer than 2 · tolerance can swap, a
    rank moves by at most its number of such neighbours c_i, so by
    Cauchy–Schwarz |Δρ| <= 2 |c| / |r − mean r| (the 2 for the changed
    norm in the denominator)."""
    drops = np.asarray(drops, np.float64)
    close = (np.abs(drops[:, None] - drops[None, :]) <= 2 * tolerance).sum(1) - 1
    ranks = rankdata(drops)
    return 2 * np.linalg.norm(close) / np.linalg.norm(ranks - ranks.mean())


@pytest.mark.parametrize("name", _names("MuFidelity"))
def test_mufidelity_equals_xplique(name):
    case, predict, heatmaps, targets, options = _case(name)
    settings = case["settings"]
    got = fidelity.mufidelity(predict, GOLDEN["images"], heatmaps, targets, **options,
                              grid_size=settings["grid_size"],
                              subset_percent=settings["subset_percent"],
                              nb_samples=settings["nb_samples"], subsets=GOLDEN[f"{name}.subsets"])
    drops, attributions = GOLDEN[f"{name}.drops"], GOLDEN[f"{name}.attributions"]
    np.testing.assert_allclose(got["drops"], drops, rtol=0, atol=SCORE_ULPS * EPS)
    # xplique's float32 reduce_sum over <= 1024 pixels against float64 sums.
    np.testing.assert_allclose(got["attributions"], attributions, rtol=0,
                               atol=8 * EPS * np.abs(attributions).max())
    # On xplique's own series the correlation is scipy's spearmanr.
    np.testing.assert_allclose(fidelity.correlations(drops, attributions),
                               GOLDEN[f"{name}.correlations"], rtol=0, atol=4 * EPS)
    # End to end: equal where no two drops are within rounding of each other
    # (the classifier cases); the retrieval drops (cosines near 1, 2e-5 to
    # 1e-3, so a few hundred ulps apart at times) move by at most the ranks
    # that rounding may swap.
    bounds = np.array([0.0 if case["target"] != "similarity" else
                       _rank_ambiguity(row, SCORE_ULPS * EPS) for row in drops]) + 4 * EPS
    assert (np.abs(got["mufidelity"] - GOLDEN[f"{name}.correlations"]) <= bounds).all()
    assert abs(got["average"] - GOLDEN[f"{name}.score"]) <= bounds.mean()


def test_grid_cells_are_tf_nearest_half_pixel():
    for grid, size in ((9, 32), (8, 32), (7, 20), (32, 32)):
        expected = np.minimum(np.floor((np.arange(size) + 0.5) * grid / size), grid - 1)
        cells = fidelity.grid_cells(grid, size, size).numpy()
        np.testing.assert_array_equal(cells, expected[:, None] * grid + expected[None, :])


def test_mufidelity_retrieval_net_by_hand():
    net = keras_net("embedding")
    images, heatmaps = GOLDEN["images"][:2], GOLDEN["heatmaps.signed"][:2]
    substrate = np.array([0.2, 0.4, 0.6], np.float32)
    got = fidelity.mufidelity(lambda b: net(b), images, heatmaps, embedding=True,
                              substrate=substrate, grid_size=4, subset_percent=0.3,
                              nb_samples=12, seed=3, batch_size=5)
    subsets = got["subsets"]
    assert subsets.shape == (2, 12, 4, 4)
    np.testing.assert_array_equal(
        subsets, np.random.default_rng(3).random((2, 12, 4, 4)) <= 0.3)
    for i in range(2):
        e = net(images[i:i + 1]).numpy()[0].astype(np.float64)
        drops, sums = [], []
        for s in range(12):
            removed = np.kron(subsets[i, s], np.ones((8, 8), bool))   # 4 cells of 8 px
            perturbed = np.where(removed[..., None], substrate, images[i]).astype(np.float32)
            p = net(perturbed[None]).numpy()[0].astype(np.float64)
            drops.append(1.0 - p @ e / np.linalg.norm(p) / np.linalg.norm(e))
            sums.append(heatmaps[i][removed].astype(np.float64).sum())
        np.testing.assert_allclose(got["drops"][i], drops, rtol=0, atol=SCORE_ULPS * EPS)
        np.testing.assert_allclose(got["attributions"][i], sums, rtol=1e-12)
        expected = spearmanr(drops, sums)[0]
        assert abs(got["mufidelity"][i] - expected) <= max(
            1e-12, _rank_ambiguity(drops, SCORE_ULPS * EPS))
    pearson = fidelity.mufidelity(lambda b: net(b), images, heatmaps, embedding=True,
                                  substrate=substrate, grid_size=4, subset_percent=0.3,
                                  nb_samples=12, seed=3, correlation="pearson")
    np.testing.assert_allclose(pearson["mufidelity"],
                               [np.corrcoef(d, a)[0, 1] for d, a in
                                zip(pearson["drops"], pearson["attributions"])], atol=1e-12)


def test_constant_series_correlate_zero_as_xplique():
    np.testing.assert_array_equal(fidelity.correlations(np.ones((2, 5)), np.arange(10.)
                                                        .reshape(2, 5)), [0.0, 0.0])


# ------------------------------------------------------------ pointing game

BOX = np.array([[16, 16, 26, 26]])        # pixels 16..25


def _planted(points, size=48):
    maps = np.random.default_rng(0).uniform(0, 0.5, (len(points), size, size))
    for heatmap, (x, y) in zip(maps, points):
        heatmap[y, x] = 1.0
    return maps


def _hits(maps, protocol, tolerance=15, boxes=None, masks=None):
    boxes = None if masks is not None else (boxes if boxes is not None else [BOX] * len(maps))
    return fm.pointing_game(maps, boxes, tolerance, protocol=protocol, gt_masks=masks)["hits"]


def test_pointing_protocols_on_planted_maxima():
    points = [(20, 20),   # inside
              (39, 20),   # 14 px right of the last column: within both tolerances
              (40, 20),   # 15 px right: tfcaf's square takes it, TorchRay's d < 15 not
              (36, 36),   # (11, 11) diagonally: square yes, disc no (d² = 242 > 225)
              (35, 35),   # (10, 10): d² = 200 < 225, both
              (20, 5)]    # 11 px above: a hit only with a tolerance (not Quantus)
    maps = _planted(points)
    np.testing.assert_array_equal(_hits(maps, "tfcaf"), [1, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(_hits(maps, "torchray"), [1, 1, 0, 0, 1, 1])
    np.testing.assert_array_equal(_hits(maps, "quantus"), [1, 0, 0, 0, 0, 0])
    # TorchRay's acceptance is strict: tolerance 0 never hits, even inside.
    assert not _hits(maps, "torchray", tolerance=0).any()
    np.testing.assert_array_equal(_hits(maps, "tfcaf", tolerance=0), [1, 0, 0, 0, 0, 0])


def test_pointing_torchray_disc_on_a_mask_that_is_no_box():
    maps = _planted([(30, 30), (30, 30)])
    masks = np.zeros((2, 48, 48), bool)
    masks[0, 30 + 10, 30 + 10] = True       # one pixel, d² = 200: inside the disc
    masks[1, 30 + 11, 30 + 11] = True       # d² = 242: outside
    np.testing.assert_array_equal(_hits(maps, "torchray", masks=masks), [True, False])
    np.testing.assert_array_equal(_hits(maps, "quantus", masks=masks), [False, False])
    # The same pixel as a box: tfcaf's square holds both.
    boxes = [np.array([[40, 40, 41, 41]]), np.array([[41, 41, 42, 42]])]
    np.testing.assert_array_equal(_hits(maps, "tfcaf", boxes=boxes), [True, True])
    np.testing.assert_array_equal(protocols.box_masks(boxes, (48, 48)), masks)


def test_pointing_ties_constant_and_nan_maps():
    maps = np.zeros((3, 48, 48))
    maps[0, 2, 2] = maps[0, 20, 20] = 1.0   # tie: first (2, 2) outside, second inside
    maps[1] = 0.5                           # constant
    maps[2, 30, 30] = np.nan
    boxes = [BOX, np.array([[0, 0, 5, 5]]), np.array([[28, 28, 33, 33]])]
    # tfcaf: the first maximum, (2, 2), lies in the box ± 15; constant/NaN point nowhere.
    np.testing.assert_array_equal(_hits(maps, "tfcaf", boxes=boxes), [True, False, False])
    # TorchRay: (2, 2) is 14 px from the box on both axes (d² = 392); the constant map
    # points at (0, 0), the NaN map at its NaN.
    np.testing.assert_array_equal(_hits(maps, "torchray", boxes=boxes), [False, True, True])
    # Quantus: every tied maximum counts; a NaN maximum hits nothing.
    np.testing.assert_array_equal(_hits(maps, "quantus", boxes=boxes), [True, True, False])
    # An image without boxes is a miss for every protocol (Quantus: NaN).
    empty = [np.array([[-1, -1, -1, -1]])] * 3
    for protocol in protocols.POINTING_PROTOCOLS:
        assert not _hits(maps, protocol, boxes=empty).any()


# ------------------------------------------------------------------ errors

def test_unknown_protocols_name_the_choices():
    images, maps = GOLDEN["images"][:1], GOLDEN["heatmaps.unit"][:1]
    predict = keras_net("classifier")
    calls = [(lambda: fm.deletion_insertion(predict, images, maps, [0], protocol="eclique"),
              "'rise', 'xplique'"),
             (lambda: fm.average_drop_increase(predict, images, maps, [0], protocol="wacv"),
              "'grad-cam++', 'xplique', 'pytorch-grad-cam'"),
             (lambda: fm.pointing_game(maps, [BOX], protocol="zhang"),
              "'tfcaf', 'torchray', 'quantus'"),
             (lambda: fidelity.mufidelity(predict, images, maps, [0], correlation="kendall"),
              "'spearman', 'pearson'")]
    for call, choices in calls:
        with pytest.raises(TfcafError, match=re.escape(f"choose one of {choices}")):
            call()


def test_protocol_options_do_not_mix():
    images, maps = GOLDEN["images"][:1], GOLDEN["heatmaps.unit"][:1]
    predict = keras_net("classifier")
    with pytest.raises(TfcafError, match="'xplique' options"):
        fm.deletion_insertion(predict, images, maps, [0], steps=5)
    with pytest.raises(TfcafError, match="'rise' option"):
        fm.deletion_insertion(predict, images, maps, [0], step=32, protocol="xplique")
    with pytest.raises(TfcafError, match="gt_masks"):
        fm.pointing_game(maps, None, gt_masks=np.ones((1, 32, 32), bool))
    with pytest.raises(TfcafError, match="subsets"):
        fidelity.mufidelity(predict, images, maps, [0], nb_samples=3,
                            subsets=np.zeros((4, 9, 9), bool))
