"""tfcaf's Sparseness, Complexity, Faithfulness Correlation and Average /
Max Sensitivity equal Quantus 0.6.0's (tests/data/golden/quantus.npz,
written by tools/make_quantus_golden.sh with Quantus itself on
tools/golden_torch_net.py; tfcaf runs on the Keras golden net).

Quantus draws its random subsets and noise from numpy's legacy global
RandomState after np.random.seed(seed); the golden file stores the seed and
the sha256 of what Quantus drew (the script recorded the draws and checked
that RandomState replays them). The tests replay them the same way, prove
them equal by the digest, and inject them into tfcaf: the same subsets and
the same noise, so the results agree up to float32 rounding, bounded below
in float32 rounding steps (ulps) of the quantity rounded (never loosened to
pass). Quantus's arrays are NCHW; tfcaf's NHWC (`_nhwc_index`,
`_nhwc_noise`).
"""

import hashlib

import numpy as np
import pytest
import tensorflow as tf

from golden_files import FLOAT32_EPS, assert_maps_equal, keras_net, load
from tfcaf.errors import TfcafError
from tfcaf.metrics import map_complexity as cx
from tfcaf.metrics import correlation as co
from tfcaf.metrics import sensitivity as st

META, GOLDEN = load("quantus")
SIZE = 32
FEATURES = 3 * SIZE * SIZE


def _cases(*methods):
    return [case for case in META if case["method"] in methods]


def _ids(cases):
    return [case["name"] for case in cases]


def _digest(array, dtype):
    return hashlib.sha256(np.ascontiguousarray(array, dtype=dtype).tobytes()).hexdigest()


def _nhwc_index(nchw):
    """Flat indices into a (3, H, W) image -> into its (H, W, 3) layout."""
    channel, pixel = np.divmod(nchw, SIZE * SIZE)
    return pixel * 3 + channel


def _nhwc_noise(noise):
    """(S, N, 3·H·W) NCHW-flat noise -> (S, N, H, W, 3)."""
    return noise.reshape(noise.shape[:2] + (3, SIZE, SIZE)).transpose(0, 1, 3, 4, 2)


def _quantus_subsets(case):
    """FaithfulnessCorrelation's draws: per run, per image,
    np.random.choice(3·H·W, subset_size, replace=False) -> (runs, N, size)."""
    settings, state = case["settings"], np.random.RandomState(case["seed"])
    draws = np.array([[state.choice(FEATURES, settings["subset_size"], replace=False)
                       for _ in GOLDEN["images"]] for _ in range(settings["nr_runs"])])
    assert _digest(draws, "<i8") == case["subsets_sha256"]
    assert np.array_equal(draws[0], GOLDEN[f"{case['name']}.subsets_first_run"])
    return _nhwc_index(draws)


def _quantus_noise(case):
    """Avg/MaxSensitivity's draws: per sample, np.random.uniform(-b, b,
    (N, 3·H·W)) -> (samples, N, H, W, 3) float64."""
    settings, state = case["settings"], np.random.RandomState(case["seed"])
    bound, count = settings["lower_bound"], len(GOLDEN["images"])
    noise = np.array([state.uniform(-bound, bound, (count, FEATURES))
                      for _ in range(settings["nr_samples"])])
    assert _digest(noise, "<f8") == case["noise_sha256"]
    return _nhwc_noise(noise)


def _saliency(images, targets):
    """The golden explain_func in TF: |d logit[target] / d x|, max over channels."""
    model = keras_net("classifier")
    x = tf.convert_to_tensor(images, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        chosen = tf.gather(model(x), tf.constant(targets, tf.int32), batch_dims=1)
    return tf.reduce_max(tf.abs(tape.gradient(chosen, x)), axis=-1).numpy()


@pytest.mark.parametrize("case", _cases("Sparseness"), ids=_ids(_cases("Sparseness")))
def test_sparseness_equals_quantus(case):
    settings = {k: case["settings"][k] for k in ("abs", "normalise")}
    expected = GOLDEN[f"{case['name']}.scores"]
    actual = cx.sparseness(GOLDEN[case["heatmaps"]], **settings)
    # Quantus sums the n values in float32: 2 ulps of |G| times the sum's
    # condition Σ|a| / |Σa| (1 for non-negative maps; 102 for the signed
    # planted map with abs=False).
    values = cx.quantus_preprocess(GOLDEN[case["heatmaps"]], **settings).reshape(
        len(expected), -1) + cx.SPARSENESS_EPSILON
    condition = np.abs(values).sum(axis=1) / np.abs(values.sum(axis=1))
    np.testing.assert_array_less(np.abs(actual - expected),
                                 2 * FLOAT32_EPS * np.abs(expected) * condition + 1e-300)


def test_sparseness_normalises_over_the_whole_batch_as_quantus():
    planted = GOLDEN["heatmaps.planted"]
    one_hot = cx.sparseness(planted)[1]
    assert abs(one_hot - GOLDEN["Sparseness.planted.default.scores"][1]) < 4 * FLOAT32_EPS
    # Alone, the one-hot map is normalised to 1, not to 0.25 / max|signed map|.
    assert abs(cx.sparseness(planted[1:2])[0] - one_hot) > 1e-4


@pytest.mark.parametrize("case", _cases("Complexity"), ids=_ids(_cases("Complexity")))
def test_complexity_equals_quantus(case):
    expected = GOLDEN[f"{case['name']}.scores"]
    actual = cx.complexity(GOLDEN[case["heatmaps"]], abs=case["settings"]["abs"],
                           normalise=case["settings"]["normalise"])
    # Quantus's entropy is a float32 sum of H·W terms p·log p: 4 ulps of
    # the largest entropy (≈ log 1024).
    assert_maps_equal(actual, expected, 4)


@pytest.mark.parametrize("case", _cases("FaithfulnessCorrelation"),
                         ids=_ids(_cases("FaithfulnessCorrelation")))
def test_faithfulness_correlation_equals_quantus(case):
    settings, name = case["settings"], case["name"]
    model = keras_net("classifier")
    result = co.faithfulness_correlation(
        lambda batch: model(batch), GOLDEN["images"], GOLDEN[case["heatmaps"]],
        np.array(case["target_ids"]), substrate=(settings["perturb_baseline"],) * 3,
        nb_runs=settings["nr_runs"], subset_size=settings["subset_size"],
        softmax=settings["softmax"], abs=settings["abs"], normalise=settings["normalise"],
        subsets=_quantus_subsets(case))
    deltas, sums = GOLDEN[f"{name}.pred_deltas"], GOLDEN[f"{name}.att_sums"]
    # Score drops: 4 ulps of the largest score (a logit of the image or of a
    # perturbed copy; probabilities <= 1).
    if settings["softmax"]:
        scale = 1.0
    else:
        logits = GOLDEN["logits"][np.arange(4), case["target_ids"]][:, None]
        scale = max(np.abs(logits).max(), np.abs(logits - deltas).max())
    np.testing.assert_allclose(result["score_drops"], deltas, rtol=0,
                               atol=4 * FLOAT32_EPS * scale)
    # Attribution sums: Quantus's float32 sums of 224 values, 4 ulps of the largest.
    assert_maps_equal(result["attribution_sums"], sums, 4)
    # Pearson r moves by at most 2‖Δa‖/‖a − ā‖ + 2‖Δb‖/‖b − b̄‖ when its
    # inputs move by Δa, Δb (the differences just bounded), plus 1 ulp of
    # Quantus's float32 result.
    expected = GOLDEN[f"{name}.scores"]
    def spread(x):
        return np.linalg.norm(x - x.mean(axis=1, keepdims=True), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = (2 * np.linalg.norm(result["score_drops"] - deltas, axis=1) / spread(deltas)
                 + 2 * np.linalg.norm(result["attribution_sums"] - sums, axis=1) / spread(sums)
                 + FLOAT32_EPS)
    actual = result["faithfulness_correlation"]
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    finite = ~np.isnan(expected)
    np.testing.assert_array_less(np.abs(actual - expected)[finite], bound[finite])
    # On Quantus's own inputs, tfcaf's Pearson r is Quantus's to 1 ulp.
    mine = co._pearson(sums.astype(np.float64), deltas.astype(np.float64))
    np.testing.assert_allclose(mine[finite], expected[finite], rtol=0, atol=FLOAT32_EPS)


def test_faithfulness_correlation_of_a_retrieval_net_by_hand():
    model = keras_net("embedding")
    images, heatmaps = GOLDEN["images"], GOLDEN["heatmaps.saliency"]
    runs, size, substrate = 6, 300, np.array([0.2, 0.4, 0.6], np.float32)
    rng = np.random.default_rng(3)
    subsets = np.array([[rng.choice(FEATURES, size, replace=False) for _ in images]
                        for _ in range(runs)])
    result = co.faithfulness_correlation(lambda batch: model(batch), images, heatmaps,
                                         embedding=True, substrate=substrate, nb_runs=runs,
                                         subset_size=size, subsets=subsets, batch_size=5)
    reference = model(images).numpy().astype(np.float64)
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    normalised = heatmaps.astype(np.float64) / np.abs(heatmaps).max()
    for n, image in enumerate(images):
        drops, sums = [], []
        for run in range(runs):
            perturbed = image.reshape(-1).copy()
            perturbed[subsets[run, n]] = np.tile(substrate, SIZE * SIZE)[subsets[run, n]]
            embedding = model(perturbed.reshape(1, SIZE, SIZE, 3)).numpy()[0].astype(np.float64)
            drops.append(1.0 - embedding @ reference[n] / np.linalg.norm(embedding))
            sums.append(normalised[n].reshape(-1)[subsets[run, n] // 3].sum())
        # Cosines of float32 unit embeddings: 8 ulps of 1.
        np.testing.assert_allclose(result["score_drops"][n], drops, rtol=0,
                                   atol=8 * FLOAT32_EPS)
        np.testing.assert_allclose(result["attribution_sums"][n], sums, rtol=1e-12)
        assert result["faithfulness_correlation"][n] == pytest.approx(
            np.corrcoef(result["attribution_sums"][n], result["score_drops"][n])[0, 1], abs=1e-12)


def test_faithfulness_correlation_draws_from_its_seed():
    model = keras_net("classifier")
    images, heatmaps = GOLDEN["images"][:3], GOLDEN["heatmaps.saliency"][:3]
    options = dict(nb_runs=4, subset_size=10, seed=5)
    first = co.faithfulness_correlation(lambda b: model(b), images, heatmaps, [0, 1, 2],
                                        batch_size=5, **options)
    rng = np.random.default_rng(5)
    # Copy order is run-major: run r of image n is copy r * N + n.
    subsets = np.array([[rng.choice(FEATURES, 10, replace=False) for _ in range(3)]
                        for _ in range(4)])
    again = co.faithfulness_correlation(lambda b: model(b), images, heatmaps, [0, 1, 2],
                                        subsets=subsets, **options)
    # Other batches: TF's float32 rounding of probabilities, 4 ulps of 1.
    np.testing.assert_allclose(first["score_drops"], again["score_drops"], rtol=0,
                               atol=4 * FLOAT32_EPS)
    np.testing.assert_array_equal(first["attribution_sums"], again["attribution_sums"])


def test_faithfulness_correlation_explains_the_top1_class_without_targets():
    model = keras_net("classifier")
    images, heatmaps = GOLDEN["images"], GOLDEN["heatmaps.saliency"]
    top1 = model(images).numpy().argmax(axis=1)
    options = dict(nb_runs=3, subset_size=20, softmax=False)
    assert np.array_equal(
        co.faithfulness_correlation(lambda b: model(b), images, heatmaps, **options)["score_drops"],
        co.faithfulness_correlation(lambda b: model(b), images, heatmaps, top1,
                                    **options)["score_drops"])


def test_saliency_in_tf_is_the_golden_explain_func():
    assert_maps_equal(_saliency(GOLDEN["images"], GOLDEN["target_ids"]),
                      GOLDEN["heatmaps.saliency"], 4)


@pytest.mark.parametrize("case", _cases("AvgSensitivity", "MaxSensitivity"),
                         ids=_ids(_cases("AvgSensitivity", "MaxSensitivity")))
def test_sensitivity_equals_quantus(case):
    settings, name = case["settings"], case["name"]
    result = st.stability(_saliency, GOLDEN["images"], np.array(case["target_ids"]),
                          lower_bound=settings["lower_bound"], nb_samples=settings["nr_samples"],
                          norm="fro", abs=settings["abs"], noise=_quantus_noise(case),
                          reduce="mean" if case["method"] == "AvgSensitivity" else "max")
    # ‖E(x) − E(x')‖ / ‖E(x)‖ of float32 maps that agree to ~3 ulps of
    # their maximum: 4 ulps of the largest sensitivity, per noisy copy and
    # for their mean / max.
    assert_maps_equal(result["sensitivities"], GOLDEN[f"{name}.similarities"], 4)
    assert_maps_equal(result["stability"], GOLDEN[f"{name}.scores"], 4)


def test_stability_linf_abs_by_hand():
    images, targets = GOLDEN["images"][:2], np.array([3, 1])
    noise = np.random.default_rng(8).uniform(-0.1, 0.1, (3, 2, SIZE, SIZE, 3))
    result = st.stability(lambda x, t: -_saliency(x, t), images, targets, nb_samples=3,
                          norm="linf", abs=True, noise=noise, batch_size=4)
    original = _saliency(images, targets).reshape(2, -1).astype(np.float64)
    for sample in range(3):
        noisy = (images.astype(np.float64) + noise[sample]).astype(np.float32)
        maps = _saliency(noisy, targets).reshape(2, -1)
        expected = np.abs(original - maps).max(axis=1) / original.max(axis=1)
        # Other batches than tfcaf's: TF's float32 rounding, 4 ulps.
        assert_maps_equal(result["sensitivities"][:, sample], expected, 4)
    np.testing.assert_allclose(result["stability"], result["sensitivities"].mean(axis=1))


def test_stability_draws_from_its_seed_whatever_the_batch_size():
    images = GOLDEN["images"][:3]
    options = dict(nb_samples=5, lower_bound=0.1, seed=4)
    first = st.max_sensitivity(_saliency, images, [0, 1, 2], batch_size=4, **options)
    again = st.max_sensitivity(_saliency, images, [0, 1, 2], batch_size=15, **options)
    np.testing.assert_allclose(first["sensitivities"], again["sensitivities"], rtol=0,
                               atol=4 * FLOAT32_EPS)
    assert first["sensitivities"].shape == (3, 5)
    np.testing.assert_array_equal(first["stability"], first["sensitivities"].max(axis=1))


def _faithfulness(**options):
    model = keras_net("classifier")
    arguments = dict(predict=lambda b: model(b), images=GOLDEN["images"],
                     heatmaps=GOLDEN["heatmaps.saliency"], targets=[0, 1, 2, 3], nb_runs=3)
    arguments.update(options)
    return co.faithfulness_correlation(**arguments)


@pytest.mark.parametrize("options, named", [
    (dict(heatmaps=np.zeros((4, 16, 16))), "heatmaps"),
    (dict(images=np.zeros((4, 32, 32))), "images"),
    (dict(targets=[0, 1]), "targets"),
    (dict(targets=[0, 1, 2, 9]), "targets"),
    (dict(subset_size=FEATURES), "subset_size"),
    (dict(nb_runs=1), "nb_runs"),
    (dict(substrate=(0.0, 0.0)), "substrate"),
    (dict(subsets=np.zeros((3, 4, 5), int)), "subsets"),
    (dict(subset_size=2, subsets=np.zeros((3, 4, 2), int)), "subsets"),
    (dict(subset_size=2, subsets=np.full((3, 4, 2), [0, FEATURES])), "subsets"),
])
def test_faithfulness_correlation_errors_name_the_argument(options, named):
    with pytest.raises(TfcafError, match=f"faithfulness_correlation: {named}"):
        _faithfulness(**options)


@pytest.mark.parametrize("options, named", [
    (dict(explain=lambda x, t: np.zeros((len(x), 16, 16))), "explain"),
    (dict(noise=np.zeros((2, 4, 32, 32, 3))), "noise"),
    (dict(reduce="median"), "norm must be one of .* reduce"),
    (dict(norm="l1"), "norm"),
    (dict(lower_bound=0.3, upper_bound=0.1), "upper_bound"),
    (dict(lower_bound=0.0), "lower_bound"),
    (dict(nb_samples=0), "nb_samples"),
    (dict(targets=[0]), "targets"),
])
def test_stability_errors_name_the_argument(options, named):
    arguments = dict(explain=_saliency, images=GOLDEN["images"], targets=[0, 1, 2, 3],
                     nb_samples=3)
    arguments.update(options)
    with pytest.raises(TfcafError, match=f"stability: {named}"):
        st.stability(**arguments)


@pytest.mark.parametrize("metric", [cx.sparseness, cx.complexity])
def test_complexity_metrics_want_n_h_w_heatmaps(metric):
    with pytest.raises(TfcafError, match=f"{metric.__name__}: heatmaps must be"):
        metric(np.zeros((4, 32)))
