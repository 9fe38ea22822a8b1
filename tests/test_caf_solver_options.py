"""Solver options: presets against the authors' code, options a solver does
not read, restarts against separately solved starts, `fold=False` on a
Dense(GAP) head, integer targets, per-problem L-BFGS frames and float16
stand-ins."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcaf.caf import Explainer, SolverConfig, explain, objective
from tfcaf.caf.smoothing import Smoothing
from tfcaf.caf.solver_config import LBFGS_RESTARTS
from tfcaf.errors import TfcafError

H, W, C, K = 5, 5, 3, 4


def _gap_dense_model(seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((H, W, C))
    features = keras.layers.Conv2D(C, 1, name="features")(inputs)
    return keras.Model(
        inputs, keras.layers.Dense(K)(keras.layers.GlobalAveragePooling2D()(features)))


def _relu_head_model(seed):
    """'features' -> Flatten -> Dense(8, relu) -> Dense(4): a folded ReLU
    head, which L-BFGS solves in two phases."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((H, W, C))
    x = keras.layers.Conv2D(C, 1, name="features")(inputs)
    dense = lambda units, **kw: keras.layers.Dense(  # noqa: E731
        units, bias_initializer=keras.initializers.RandomNormal(stddev=0.5), **kw)
    x = dense(8, activation="relu")(keras.layers.Flatten()(x))
    return keras.Model(inputs, dense(K)(x))


def _images(seed, count=3):
    return np.random.default_rng(seed).normal(size=(count, H, W, C)).astype("float32")


def test_presets_are_the_authors_scripts_run_without_arguments():
    # ahmdtaha/constrained_attention_filter@2c7258d visualize_attention.py:
    # '--learning_rate','0.5', '--max_iters','1000', AdamOptimizer,
    # np.random.normal(0, 1) filter, end_learning_rate default 0,
    # "iteration % 50 == 0" check against min_error 1e-6.
    tf_code = SolverConfig.preset("authors")
    assert (tf_code.optimizer, tf_code.learning_rate, tf_code.max_iterations) == \
        ("adam", 0.5, 1000)
    assert (tf_code.final_rate, tf_code.init, tf_code.check_every, tf_code.tolerance) == \
        (0.0, "normal", 50, 1e-6)
    # ahmdtaha/l2_caf_pytorch@b8f096b class_oblivious.py default_args:
    # '--max_iter','1000', "--lr",'0.5', optim.SGD, torch.ones filter
    # (constraint_attention_filter.py), polynomial_lr_decay min 1e-5
    # (utils/lr_utils.py), min_error 10e-7 every 50 (configs/base_config.py).
    pytorch = SolverConfig.preset("authors_pytorch")
    assert (pytorch.optimizer, pytorch.learning_rate, pytorch.max_iterations) == \
        ("sgd", 0.5, 1000)
    assert (pytorch.final_rate, pytorch.init, pytorch.check_every, pytorch.tolerance) == \
        (1e-5, "ones", 50, 1e-6)
    assert SolverConfig.authors("pytorch") == pytorch and SolverConfig.authors() == tf_code
    assert SolverConfig.preset("default") == SolverConfig()
    with pytest.raises(TfcafError, match="unknown solver preset 'adam'"):
        SolverConfig.preset("adam")


@pytest.mark.parametrize("options, named", [
    (dict(optimizer="lbfgs", tolerance=1e-3, check_every=10), "check_every, tolerance"),
    (dict(optimizer="adam", relative_tolerance=0.5), "relative_tolerance"),
    (dict(optimizer="sgd", smoothing=10.0), "smoothing"),
    (dict(tolerance=1e-3), "tolerance"),  # "auto" resolves to L-BFGS on this head
])
def test_options_the_resolved_solver_does_not_read_are_refused(options, named):
    model = _relu_head_model(seed=0)
    with pytest.raises(TfcafError, match=f"option\\(s\\) {named} not used by the solver"):
        explain(model, _images(0), layer="features", **options)


def test_options_the_resolved_solver_reads_are_accepted():
    model = _gap_dense_model(seed=0)
    adam = explain(model, _images(0), layer="features", tolerance=1e-3, check_every=10)
    assert adam.solver["optimizer"] == "adam" and adam.solver["check_every"] == 10
    assert adam.solver["horizon"] == 1000 and "relative_tolerance" not in adam.solver
    lbfgs = explain(model, _images(0), layer="features", optimizer="lbfgs",
                    relative_tolerance=1e-4)
    assert lbfgs.solver["optimizer"] == "lbfgs" and "tolerance" not in lbfgs.solver


@pytest.mark.slow
def test_restarts_keep_the_best_of_separately_solved_starts():
    explainer = Explainer(_relu_head_model(seed=1), "features")
    feature_maps, _ = explainer.forward(_images(1, count=4))
    config = SolverConfig(optimizer="lbfgs", seed=7, max_iterations=40, restarts=1)
    starts = []
    for r in range(3):
        draw = tf.random.stateless_normal((H, W), seed=[7, r])
        params = tf.tile(draw[None], [4, 1, 1])
        starts.append(objective.solve_l2caf(explainer.split, feature_maps, None, params, config))
    losses = np.stack([s.losses.numpy() for s in starts])
    best = losses.argmin(0)
    restarted = explainer.solve(feature_maps, None, dataclasses.replace(config, restarts=3))
    np.testing.assert_allclose(restarted.losses, losses.min(0), rtol=1e-5, atol=1e-7)
    expected_maps = np.stack([starts[b].maps.numpy()[i] for i, b in enumerate(best)])
    # Batch size changes float rounding, which a ReLU head amplifies a little.
    np.testing.assert_allclose(restarted.maps, expected_maps, atol=1e-3)
    single = explainer.solve(feature_maps, None, config)
    np.testing.assert_allclose(single.losses, losses[0], rtol=1e-5, atol=1e-7)


def test_restarts_default_to_several_for_lbfgs_and_one_for_adam():
    explainer = Explainer(_relu_head_model(seed=1), "features")
    assert explainer.resolve(SolverConfig()).restarts == LBFGS_RESTARTS > 1
    assert explainer.resolve(SolverConfig(optimizer="adam")).restarts == 1
    assert explainer.resolve(SolverConfig.authors()).restarts == 1
    assert explainer.resolve(SolverConfig(optimizer="lbfgs", init="ones")).restarts == 1
    closed_form = Explainer(_gap_dense_model(seed=1), "features")
    assert closed_form.resolve(SolverConfig()).restarts == 1


def test_auto_runs_adam_on_heads_ending_in_an_l2_normalisation():
    keras.utils.set_random_seed(2)
    inputs = keras.Input((H, W, C))
    x = keras.layers.Conv2D(C, 1, name="features")(inputs)
    x = keras.layers.Dense(K)(keras.layers.Flatten()(x))
    for final in (keras.layers.UnitNormalization(),
                  keras.layers.Lambda(lambda e: tf.math.l2_normalize(e, axis=-1))):
        explainer = Explainer(keras.Model(inputs, final(x)), "features")
        assert explainer.split.dense is None and explainer.output == "embedding"
        resolved = explainer.resolve(SolverConfig())
        assert (resolved.optimizer, resolved.restarts) == ("adam", 1)


def test_auto_runs_adam_on_heads_with_a_convolution_in_the_loop():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((H, W, C))
    x = keras.layers.Conv2D(C, 1, name="features")(inputs)
    block = keras.Sequential([keras.Input((H, W, C)),
                              keras.layers.Conv2D(C, 3, padding="same", activation="relu")],
                             name="block")
    for layer in (keras.layers.Conv2D(C, 3, padding="same", activation="relu"),
                  keras.layers.SeparableConv2D(C, 3, padding="same"), block):
        y = keras.layers.Dense(K)(keras.layers.Flatten()(layer(x)))
        explainer = Explainer(keras.Model(inputs, y), "features")
        resolved = explainer.resolve(SolverConfig())
        assert (resolved.optimizer, resolved.restarts) == ("adam", 1), layer.name
        # The authors' run exactly, as the README's quality table says.
        assert resolved.describe() == \
            explainer.resolve(SolverConfig.preset("authors")).describe(), layer.name
    # Without one (Flatten -> Dense), L-BFGS from 4 starts.
    flat = keras.Model(inputs, keras.layers.Dense(K)(keras.layers.Flatten()(x)))
    resolved = Explainer(flat, "features").resolve(SolverConfig())
    assert (resolved.optimizer, resolved.restarts) == ("lbfgs", 4)


def test_restarts_from_a_filter_of_ones_are_refused():
    with pytest.raises(TfcafError, match="restarts=2 with init='ones'"):
        SolverConfig.authors("pytorch", restarts=2).validate()


def test_fold_false_re_runs_a_dense_gap_head():
    model = _gap_dense_model(seed=2)
    explainer = Explainer(model, "features")
    assert explainer.resolve(SolverConfig()).optimizer == "adam"
    assert explainer.resolve(SolverConfig(fold=False)).optimizer == "lbfgs"
    assert not objective.compiles_with_xla(explainer.split, SolverConfig(fold=False))
    images = _images(2)
    closed = explain(model, images, layer="features", optimizer="adam")
    re_run = explain(model, images, layer="features", optimizer="adam", fold=False)
    np.testing.assert_allclose(re_run.losses, closed.losses, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(re_run.maps, closed.maps, atol=1e-3)
    assert re_run.solver["fold"] is False


@pytest.mark.parametrize("targets", [0.5, 1.0, [0.0, 1.0, 2.0], True])
def test_targets_must_be_integers(targets):
    model = _gap_dense_model(seed=3)
    with pytest.raises(TfcafError, match="targets must be integer class ids"):
        explain(model, _images(3), method="l2caf_specific", layer="features", targets=targets)


@pytest.mark.slow
def test_lbfgs_frames_follow_each_problems_own_evaluations():
    # Each problem's frame k is its point after its own k·every + 1 head
    # evaluations over both phases, so an image solved alone has the frames
    # it has in a batch whose other images end their first phase later.
    explainer = Explainer(_relu_head_model(seed=4), "features")
    images = _images(4, count=3)
    images[1] *= 4.0
    feature_maps, _ = explainer.forward(images)
    config = SolverConfig(optimizer="lbfgs", snapshot_every=2, max_iterations=30, restarts=1)
    whole = explainer.solve(feature_maps, None, config)
    for i in range(3):
        alone = explainer.solve(feature_maps[i:i + 1], None, config)
        used = (int(alone.iterations[0]) - 1) // 2 + 1
        assert int(whole.iterations[i]) == int(alone.iterations[0])
        np.testing.assert_allclose(whole.snapshots[i, :used], alone.snapshots[0, :used],
                                   atol=1e-4)
        np.testing.assert_allclose(whole.snapshot_losses[i, :used],
                                   alone.snapshot_losses[0, :used], rtol=1e-4, atol=1e-6)


def test_stand_ins_stay_finite_on_float16_inputs_of_small_spread():
    # β = 25 / std = 2.5e5 here: beyond float16's range (65504).
    x = tf.constant(np.random.default_rng(5).normal(scale=1e-4, size=(2, 16)), tf.float16)
    relus = Smoothing(25.0)
    relus.relu("k", x)
    smooth = relus.for_rows(None).relu("k", x)
    assert smooth.dtype == tf.float16
    x32 = x.numpy().astype(np.float64)
    beta = 25.0 / x32.std(axis=1, keepdims=True)
    expected = np.logaddexp(0.0, beta * x32) / beta
    np.testing.assert_allclose(smooth.numpy().astype(np.float64), expected, rtol=2e-3, atol=1e-7)


@pytest.mark.slow
def test_refining_the_kept_start_never_ends_higher():
    explainer = Explainer(_relu_head_model(seed=6), "features")
    feature_maps, _ = explainer.forward(_images(6, count=4))
    plain = explainer.solve(feature_maps, None, SolverConfig(refine_stages=0, restarts=2))
    refined = explainer.solve(feature_maps, None, SolverConfig(restarts=2))
    # The same starts and phases, then more phases on each kept start alone.
    assert (refined.losses.numpy() <= plain.losses.numpy() * (1 + 1e-6) + 1e-9).all()
    assert (refined.iterations.numpy() > plain.iterations.numpy()).all()
    with pytest.raises(TfcafError, match="refine_stages"):
        explain(_gap_dense_model(seed=6), _images(6), layer="features", refine_stages=1)
