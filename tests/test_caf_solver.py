"""The L-BFGS solver against planted optima and the authors' settings."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcaf.caf import Explainer, SolverConfig
from tfcaf.errors import TfcafError

H, W, C, K = 5, 5, 3, 4


def _linear_flatten_model(seed):
    """Input (5, 5, 3) -> 'features' (identity 1x1 conv) -> Flatten -> Dense(4):
    a folded head whose output is linear in the filter."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((H, W, C))
    identity = lambda shape, dtype=None: tf.reshape(tf.eye(C, dtype=dtype), shape)  # noqa: E731
    features = keras.layers.Conv2D(C, 1, use_bias=False, name="features",
                                   kernel_initializer=identity)(inputs)
    outputs = keras.layers.Dense(K, name="logits")(keras.layers.Flatten()(features))
    return keras.Model(inputs, outputs)


def _planted_optimum(model, images, targets):
    """Class-specific loss Σ_k s_k FT_k = Σ_p c_p v_p + s·b with
    v_p = A_p W_p s: over unit-norm c the minimum is -‖v‖ + s·b, at
    c = -v / ‖v‖ (Cauchy-Schwarz)."""
    dense = model.get_layer("logits")
    kernel = dense.kernel.numpy().reshape(H * W, C, K)
    bias = dense.bias.numpy()
    losses, maps = [], []
    for image, target in zip(images, targets):
        signs = np.ones(K)
        signs[target] = -1.0
        v = np.einsum("pc,pck,k->p", image.reshape(H * W, C), kernel, signs)
        losses.append(-np.linalg.norm(v) + signs @ bias)
        maps.append(np.abs(v) / np.linalg.norm(v))
    return np.array(losses), np.array(maps).reshape(-1, H, W)


def test_lbfgs_reaches_the_planted_optimum_at_least_as_well_as_the_authors():
    model = _linear_flatten_model(seed=0)
    images = np.random.default_rng(0).normal(size=(4, H, W, C)).astype("float32")
    targets = np.array([0, 1, 2, 3], np.int32)
    explainer = Explainer(model, "features")
    feature_maps, _ = explainer.forward(images)
    authors = explainer.solve(feature_maps, targets, SolverConfig.authors())
    lbfgs = explainer.solve(feature_maps, targets, SolverConfig(optimizer="lbfgs"))
    best, maps = _planted_optimum(model, images, targets)
    assert (lbfgs.losses.numpy() <= authors.losses.numpy() + 1e-5).all()
    np.testing.assert_allclose(lbfgs.losses, best, rtol=1e-4)
    np.testing.assert_allclose(lbfgs.maps, maps, atol=2e-3)
    assert lbfgs.iterations.numpy().max() < authors.iterations.numpy().min()


def _tanh_model(seed):
    """Identity features -> GAP -> Dense(6, tanh) -> Dense(4): a smooth,
    non-linear, folded head."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((H, W, C))
    features = keras.layers.Conv2D(C, 1, name="features")(inputs)
    x = keras.layers.Dense(6, activation="tanh")(keras.layers.GlobalAveragePooling2D()(features))
    return keras.Model(inputs, keras.layers.Dense(K)(x))


def test_each_problem_is_independent_of_batch_and_internal_batch_size():
    model = _tanh_model(seed=1)
    images = np.random.default_rng(1).normal(size=(5, H, W, C)).astype("float32")
    explainer = Explainer(model, "features")
    feature_maps, _ = explainer.forward(images)
    config = SolverConfig(optimizer="lbfgs")
    whole = explainer.solve(feature_maps, None, config)
    chunked = explainer.solve(feature_maps, None, SolverConfig(optimizer="lbfgs",
                                                               internal_batch_size=2))
    alone = explainer.solve(feature_maps[3:4], None, config)
    # Equal up to float rounding, which differs with the evaluated batch's
    # size and L-BFGS's line search can amplify into a few more steps.
    for other, rows in ((chunked, slice(None)), (alone, slice(3, 4))):
        np.testing.assert_allclose(other.maps, whole.maps[rows], atol=1e-3)
        np.testing.assert_allclose(other.losses, whole.losses[rows], rtol=1e-5, atol=1e-7)


def test_lbfgs_on_the_compiled_closed_form_matches_the_folded_head():
    """Dense(GAP) heads run the un-compacted loop under XLA; the same
    problems on the folded head (compacted, un-compiled) agree."""
    keras.utils.set_random_seed(2)
    inputs = keras.Input((H, W, C))
    features = keras.layers.Conv2D(C, 1, name="features")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(K)(
        keras.layers.GlobalAveragePooling2D()(features)))
    images = np.random.default_rng(2).normal(size=(3, H, W, C)).astype("float32")
    closed, folded = Explainer(model, "features"), Explainer(model, "features")
    folded.split.dense = None
    feature_maps, _ = closed.forward(images)
    config = SolverConfig(optimizer="lbfgs")
    a = closed.solve(feature_maps, None, config)
    b = folded.solve(feature_maps, None, config)
    np.testing.assert_allclose(a.losses, b.losses, rtol=1e-4, atol=1e-7)
    for x, y in zip(a.maps.numpy(), b.maps.numpy()):
        assert np.corrcoef(x.ravel(), y.ravel())[0, 1] > 0.999


def test_authors_settings_are_explicit():
    tf_code, pytorch = SolverConfig.authors(), SolverConfig.authors("pytorch")
    assert (tf_code.optimizer, tf_code.learning_rate, tf_code.final_rate, tf_code.init,
            tf_code.max_iterations, tf_code.check_every, tf_code.tolerance) == \
        ("adam", 0.5, 0.0, "normal", 1000, 50, 1e-6)
    assert (pytorch.optimizer, pytorch.final_rate, pytorch.init) == ("sgd", 1e-5, "ones")
    with pytest.raises(TfcafError, match="framework 'jax'"):
        SolverConfig.authors("jax")
    with pytest.raises(TfcafError, match="optimizer 'newton'"):
        SolverConfig(optimizer="newton").validate()
    with pytest.raises(TfcafError, match="internal_batch_size"):
        SolverConfig(internal_batch_size=-1).validate()


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_each_snapshot_carries_the_loss_of_its_own_filter(optimizer):
    # With the softmax filter a snapshot is the filter c itself, so its loss
    # Σ_p c_p v_p + s·b can be recomputed by hand from the frame alone.
    model = _linear_flatten_model(seed=3)
    images = np.random.default_rng(3).normal(size=(2, H, W, C)).astype("float32")
    targets = np.array([1, 2], np.int32)
    explainer = Explainer(model, "features")
    feature_maps, _ = explainer.forward(images)
    solution = explainer.solve(feature_maps, targets, SolverConfig(
        optimizer=optimizer, filter="softmax", snapshot_every=3, max_iterations=20,
        **{"tolerance" if optimizer == "adam" else "relative_tolerance": 0.0}))
    dense = model.get_layer("logits")
    kernel = dense.kernel.numpy().reshape(H * W, C, K)
    frames = solution.snapshots.numpy()
    assert solution.snapshot_losses.shape == frames.shape[:2] and frames.shape[1] > 2
    for image, target, maps, losses in zip(images, targets, frames,
                                           solution.snapshot_losses.numpy()):
        signs = np.ones(K)
        signs[target] = -1.0
        v = np.einsum("pc,pck,k->p", image.reshape(H * W, C), kernel, signs)
        expected = maps.reshape(len(maps), H * W) @ v + signs @ dense.bias.numpy()
        np.testing.assert_allclose(losses, expected, rtol=1e-4, atol=1e-5)


def test_auto_runs_adam_in_closed_form_and_lbfgs_on_other_heads():
    keras.utils.set_random_seed(4)
    inputs = keras.Input((H, W, C))
    features = keras.layers.Conv2D(C, 1, name="features")(inputs)
    gap_dense = keras.Model(
        inputs, keras.layers.Dense(K)(keras.layers.GlobalAveragePooling2D()(features)))
    closed_form = Explainer(gap_dense, "features")
    folded = Explainer(_linear_flatten_model(seed=4), "features")
    assert closed_form.split.dense is not None and folded.split.dense is None
    images = np.random.default_rng(4).normal(size=(2, H, W, C)).astype("float32")
    for explainer, chosen, other in ((closed_form, "adam", "lbfgs"),
                                     (folded, "lbfgs", "adam")):
        feature_maps, _ = explainer.forward(images)
        solve = lambda optimizer: explainer.solve(  # noqa: E731
            feature_maps, None, SolverConfig(optimizer=optimizer))
        auto, expected, unexpected = solve("auto"), solve(chosen), solve(other)
        np.testing.assert_array_equal(auto.iterations, expected.iterations)
        np.testing.assert_allclose(auto.maps, expected.maps, atol=1e-6)
        assert (auto.iterations.numpy() != unexpected.iterations.numpy()).any()
