"""The smoothed first L-BFGS phase: its softplus stand-ins against a numpy
computation, and its snapshots against the exact head."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcaf.caf import Explainer, SolverConfig, objective
from tfcaf.caf.smoothing import Smoothing
from tfcaf.errors import TfcafError

H, W, C = 5, 5, 3


def _relu_model(seed):
    """Identity 'features' -> Flatten -> Dense(8, relu) -> Dense(6) ->
    Activation('relu') -> Dense(5) -> ReLU() -> Dense(4): every ReLU kind
    tfcaf smooths, the first inside a folded layer."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((H, W, C))
    identity = lambda shape, dtype=None: tf.reshape(tf.eye(C, dtype=dtype), shape)  # noqa: E731
    x = keras.layers.Conv2D(C, 1, use_bias=False, name="features",
                            kernel_initializer=identity)(inputs)
    # Random biases: a ReLU head without them is positively homogeneous,
    # and its L2-CAF problems often have trivial (zero-loss) solutions.
    dense = lambda units, **kw: keras.layers.Dense(  # noqa: E731
        units, bias_initializer=keras.initializers.RandomNormal(stddev=0.5), **kw)
    x = dense(8, activation="relu", name="d1")(keras.layers.Flatten()(x))
    x = keras.layers.Activation("relu")(dense(6, name="d2")(x))
    x = keras.layers.ReLU()(dense(5, name="d3")(x))
    return keras.Model(inputs, dense(4, name="d4")(x))


def _numpy_outputs(model, maps, c0, c, sharpness):
    """The head on maps ⊙ c with each ReLU replaced by softplus(β·x)/β,
    β = sharpness / std of that ReLU's inputs on maps ⊙ c0 (exact ReLUs),
    per problem."""
    weights = [(model.get_layer(n).kernel.numpy(), model.get_layer(n).bias.numpy())
               for n in ("d1", "d2", "d3", "d4")]
    betas, x = [], (maps * c0[..., None]).reshape(len(maps), -1)
    for kernel, bias in weights[:3]:
        pre = x @ kernel + bias
        betas.append(sharpness / np.maximum(pre.std(axis=1, keepdims=True), 1e-12))
        x = np.maximum(pre, 0.0)
    x = (maps * c[..., None]).reshape(len(maps), -1)
    for (kernel, bias), beta in zip(weights[:3], betas):
        x = np.logaddexp(0.0, beta * (x @ kernel + bias)) / beta
    return x @ weights[3][0] + weights[3][1]


@pytest.mark.parametrize("fold", [True, False])
def test_stand_ins_are_softplus_with_beta_from_the_calibration_spread(fold):
    model = _relu_model(seed=0)
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(3, H, W, C)).astype("float32")
    c0, c = (rng.uniform(0.1, 1.0, size=(2, 3, H, W))).astype("float32")
    split = Explainer(model, "features").split
    outputs = objective.filtered_outputs(split, tf.constant(maps), fold)
    relus = Smoothing(2.0)
    calibration = outputs(tf.constant(c0), None, relus)
    # Calibrating runs the exact head.
    np.testing.assert_allclose(calibration, split.head(maps * c0[..., None]),
                               rtol=1e-5, atol=1e-5)
    assert relus.calibrated
    np.testing.assert_allclose(outputs(tf.constant(c), None, relus.for_rows(None)),
                               _numpy_outputs(model, maps, c0, c, 2.0), rtol=1e-4, atol=1e-5)
    # A later smoothing stage scales every β: sharpness 2 × 4.
    np.testing.assert_allclose(outputs(tf.constant(c), None, relus.for_rows(None, 4.0)),
                               _numpy_outputs(model, maps, c0, c, 8.0), rtol=1e-4, atol=1e-5)
    # On a subset of the problems, each keeps its own β.
    rows = tf.constant([2, 0])
    np.testing.assert_allclose(outputs(tf.constant(c[[2, 0]]), rows, relus.for_rows(rows)),
                               _numpy_outputs(model, maps, c0, c, 2.0)[[2, 0]],
                               rtol=1e-4, atol=1e-5)


def test_every_snapshot_of_both_phases_carries_the_exact_loss():
    # With the softmax filter a snapshot is the filter c itself, so its
    # loss follows from one Keras call of the head on A ⊙ c, also for the
    # frames of the smoothed phase.
    model = _relu_model(seed=1)
    images = np.random.default_rng(1).normal(size=(2, H, W, C)).astype("float32")
    targets = np.array([1, 3], np.int32)
    explainer = Explainer(model, "features")
    feature_maps, _ = explainer.forward(images)
    solution = explainer.solve(feature_maps, targets, SolverConfig(
        optimizer="lbfgs", filter="softmax", snapshot_every=1, max_iterations=6))
    signs = 1.0 - 2.0 * np.eye(4)[targets]
    frames = solution.snapshots.numpy()
    assert frames.shape[1] > 6  # more frames than one phase of 6 evaluations gives
    for image, sign, maps, losses in zip(images, signs, frames, solution.snapshot_losses.numpy()):
        logits = explainer.split.head(image[None] * maps[..., None])
        np.testing.assert_allclose(losses, logits.numpy() @ sign, rtol=1e-4, atol=1e-5)
    final = explainer.split.head(images * solution.maps.numpy()[..., None]).numpy()
    np.testing.assert_allclose(solution.losses, (final * signs).sum(-1), rtol=1e-4, atol=1e-5)


def test_negative_smoothing_is_rejected():
    with pytest.raises(TfcafError, match="smoothing must be >= 0"):
        SolverConfig(smoothing=-1.0).validate()


@pytest.mark.slow
def test_each_problem_is_independent_of_its_batch():
    # β is calibrated per problem, so an image solved alone gives what it
    # gives in a batch whose other images have another scale. (Refilled
    # chunks, internal_batch_size, gather the same β: see the test above;
    # their different evaluated batch sizes change float rounding, which a
    # nonsmooth head can amplify along flat directions.)
    model = _relu_model(seed=5)
    images = np.random.default_rng(5).normal(size=(4, H, W, C)).astype("float32")
    images[1] *= 5.0
    explainer = Explainer(model, "features")
    feature_maps, _ = explainer.forward(images)
    config = SolverConfig(optimizer="lbfgs")
    whole = explainer.solve(feature_maps, None, config)
    for i in (0, 1):
        alone = explainer.solve(feature_maps[i:i + 1], None, config)
        # The refining phases' sharp stand-ins (β up to 25·4⁵ / std) make
        # the objective nearly nonsmooth again, and the line searches
        # amplify the batch's float rounding into ends a few 1e-5 apart.
        np.testing.assert_allclose(alone.maps, whole.maps[i:i + 1], atol=3e-3)
        np.testing.assert_allclose(alone.losses, whole.losses[i:i + 1], rtol=5e-5, atol=1e-7)


def _conv_head_model(separate_relu):
    """'features' -> Conv2D(4, 3) with its ReLU built in (VGG's form) or as
    a separate ReLU() layer -> Flatten -> Dense(3); same weights."""
    keras.utils.set_random_seed(6)
    inputs = keras.Input((H, W, C))
    x = keras.layers.Conv2D(C, 1, name="features")(inputs)
    conv = keras.layers.Conv2D(4, 3, padding="same", name="conv",
                               activation=None if separate_relu else "relu",
                               bias_initializer=keras.initializers.RandomNormal(stddev=0.5))
    x = conv(x)
    if separate_relu:
        x = keras.layers.ReLU()(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="out")(keras.layers.Flatten()(x)))


def test_a_convolutions_built_in_relu_is_smoothed_as_a_separate_relu():
    built_in, separate = _conv_head_model(False), _conv_head_model(True)
    rng = np.random.default_rng(6)
    maps = tf.constant(rng.normal(size=(2, H, W, C)).astype("float32"))
    c0, c = tf.constant(rng.uniform(0.1, 1.0, size=(2, 2, H, W)).astype("float32"))
    results = []
    for model in (built_in, separate):
        outputs = objective.filtered_outputs(Explainer(model, "features").split, maps, False)
        relus = Smoothing(2.0)
        exact = outputs(c0, None, relus)
        assert relus.calibrated
        results.append((exact, outputs(c, None, relus.for_rows(None)), outputs(c, None)))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    # The stand-in differs from the exact head (it is smoothed at all).
    assert np.abs(results[0][1] - results[0][2]).max() > 1e-3
