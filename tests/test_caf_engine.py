"""The L2-CAF solver, filters and baselines against independent references."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfcaf
from tfcaf.caf import Explainer, filters
from tfcaf.errors import TfcafError
from tfcaf.names import FILTERS

H = W = 8
CHANNELS, CLASSES = 6, 4


def _IDENTITY(shape, dtype=None):
    """1x1 convolution kernel that copies its input channels."""
    return tf.reshape(tf.eye(shape[-1], dtype=dtype), shape)


def _gap_dense_model(seed=0, hidden=None):
    """Input (8, 8, 6) -> identity 1x1 conv 'features' -> GAP -> Dense.

    With `hidden`, a tanh Dense layer sits between GAP and the output, so
    the head is non-linear (the generic, non-closed-form path).
    """
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((H, W, CHANNELS))
    features = keras.layers.Conv2D(CHANNELS, 1, use_bias=False, name="features",
                                   kernel_initializer=_IDENTITY)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(features)
    if hidden:
        x = keras.layers.Dense(hidden, activation="tanh")(x)
    return keras.Model(inputs, keras.layers.Dense(CLASSES, name="logits")(x))


def _images(n, seed=0):
    return np.random.default_rng(seed).normal(size=(n, H, W, CHANNELS)).astype("float32")


@pytest.mark.parametrize("name", FILTERS)
def test_filter_constraints(name):
    params = filters.initial_parameters(name, 3, 5, 9, "normal", seed=4)
    filt = filters.constrain(name, params, 5, 9).numpy()
    assert filt.shape == (3, 5, 9)
    if name == "l2norm":
        np.testing.assert_allclose(np.sqrt((filt ** 2).sum(axis=(1, 2))), 1.0, rtol=1e-6)
    else:
        np.testing.assert_allclose(filt.sum(axis=(1, 2)), 1.0, rtol=1e-5)
        assert (filt > 0).all()


def test_gauss_filter_is_a_unit_gaussian_at_its_mean():
    mean = tf.constant([[1.0, 6.0]])
    filt = filters.constrain("gauss", mean, 4, 7).numpy()[0]
    rows, cols = np.mgrid[0:4, 0:7]
    expected = np.exp(-0.5 * ((rows - 1.0) ** 2 + (cols - 6.0) ** 2))
    np.testing.assert_allclose(filt, expected / expected.sum(), rtol=1e-5)


@pytest.mark.parametrize("hidden", [None, 5])
def test_batch_result_equals_single_image_result(hidden):
    model = _gap_dense_model(hidden=hidden)
    images = _images(5, seed=1)
    images[3] = 0.0  # a constant image stops at the first comparison
    # Adam's stopping rule: a problem stops at a check (every 50 updates).
    batch = tfcaf.explain(model, images, method="l2caf", optimizer="adam")
    for i in (0, 3, 4):
        single = tfcaf.explain(model, images[i:i + 1], method="l2caf", optimizer="adam")
        np.testing.assert_allclose(single.maps[0], batch.maps[i], atol=1e-5)
        assert single.iterations[0] == batch.iterations[i]
    assert batch.iterations[3] == 51
    assert (batch.iterations[[0, 1, 2, 4]] > 51).all()


def test_closed_form_path_equals_running_the_head():
    model = _gap_dense_model()
    images = _images(3, seed=2)
    fast = Explainer(model)
    generic = Explainer(model)
    generic.split.dense = None
    # The same optimizer on both paths ("auto" would pick L-BFGS for the
    # head that is re-run).
    for method in ("l2caf", "l2caf_specific"):
        a = fast.explain(images, method, max_iterations=200, optimizer="adam")
        b = generic.explain(images, method, max_iterations=200, optimizer="adam")
        np.testing.assert_allclose(a.maps, b.maps, atol=1e-4)


def test_class_specific_converges_to_closed_form():
    """Dense(GAP) head: c(f) ∝ -G s with G[p] = Wᵀ A[p] / (h·w) (docs/method.md §1)."""
    model = _gap_dense_model(seed=3)
    images = _images(4, seed=3)
    targets = np.array([0, 1, 2, 3])
    result = tfcaf.explain(model, images, method="l2caf_specific", targets=targets)
    kernel = model.get_layer("logits").kernel.numpy()
    for i, t in enumerate(targets):
        g = images[i].reshape(H * W, CHANNELS) @ kernel / (H * W)
        signs = np.ones(CLASSES)
        signs[t] = -1.0
        expected = np.abs(-g @ signs)
        got = result.maps[i].reshape(-1)
        cosine = expected @ got / np.linalg.norm(expected) / np.linalg.norm(got)
        assert cosine >= 0.99, (i, cosine)


def _planted_model_and_images(hidden):
    """Only channels 0-2 reach the output; those channels are non-zero only
    on a planted 2x2 block, while channels 3-5 carry loud noise everywhere."""
    model = _gap_dense_model(seed=4, hidden=hidden)
    first = model.layers[3]
    kernel = first.kernel.numpy()
    kernel[3:] = 0.0
    first.kernel.assign(kernel)
    rng = np.random.default_rng(4)
    images = np.zeros((3, H, W, CHANNELS), "float32")
    images[..., 3:] = rng.normal(scale=5.0, size=(3, H, W, 3))
    images[:, 5:7, 1:3, :3] = rng.uniform(1.0, 2.0, size=(3, 2, 2, 3))
    return model, images


@pytest.mark.parametrize("name", FILTERS)
@pytest.mark.parametrize("hidden", [None, 5])
def test_planted_signal_gets_the_heatmap_maximum(name, hidden):
    model, images = _planted_model_and_images(hidden)
    result = tfcaf.explain(model, images, method="l2caf", filter=name)
    for raw in result.maps:
        row, col = np.unravel_index(np.argmax(raw), raw.shape)
        assert 5 <= row <= 6 and 1 <= col <= 2, (name, row, col)


def test_cam_equals_gradcam_up_to_scale():
    model = _gap_dense_model(seed=5)
    images = _images(3, seed=5)
    cam = tfcaf.explain(model, images, method="cam", targets=[0, 2, 3])
    grad = tfcaf.explain(model, images, method="gradcam", targets=[0, 2, 3])
    # Grad-CAM's α_c = W[c, t] / (h·w), so Grad-CAM = ReLU(CAM) / (h·w).
    np.testing.assert_allclose(np.maximum(cam.maps, 0) / (H * W), grad.maps,
                               rtol=1e-4, atol=1e-7)
    kernel = model.get_layer("logits").kernel.numpy()
    np.testing.assert_allclose(cam.maps[1], images[1] @ kernel[:, 2], rtol=1e-4, atol=1e-5)


def _embedding_model(seed, normalised):
    """Identity features -> GAP -> Dense(3) ["embedding_dense"] [-> L2
    normalisation]; the last layer is named "embedding"."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((H, W, CHANNELS))
    features = keras.layers.Conv2D(CHANNELS, 1, kernel_initializer=_IDENTITY,
                                   use_bias=False)(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    dense = keras.layers.Dense(3, name="embedding_dense" if normalised else "embedding")
    outputs = dense(pooled)
    if normalised:
        outputs = keras.layers.UnitNormalization(name="embedding")(outputs)
    return keras.Model(inputs, outputs), dense


def test_gradcam_on_embedding_output():
    model, dense = _embedding_model(6, normalised=False)
    images = _images(2, seed=6)
    result = tfcaf.explain(model, images, method="gradcam")
    kernel, bias = dense.kernel.numpy(), dense.bias.numpy()
    for i in range(2):
        e = images[i].mean(axis=(0, 1)) @ kernel + bias
        # y = e·sg(e): ∂y/∂A[ij] = W e / (h·w) at every position, so α = W e / (h·w).
        alpha = kernel @ e / (H * W)
        expected = np.maximum(images[i] @ alpha, 0)
        np.testing.assert_allclose(result.maps[i], expected, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="embedding"):
        tfcaf.explain(model, images, method="cam")


def test_several_targets_are_independent_problems():
    model = _gap_dense_model(seed=7)
    images = _images(2, seed=7)
    both = tfcaf.explain(model, images, method="l2caf_specific", targets=[[1, 3], [0, 2]])
    assert both.heatmaps.shape == (2, 2, H, W)
    alone = tfcaf.explain(model, images[1:], method="l2caf_specific", targets=[2])
    np.testing.assert_allclose(both.maps[1, 1], alone.maps[0], atol=1e-5)


def test_heatmaps_are_image_sized_in_unit_range_and_snapshots_recorded():
    model = _gap_dense_model(seed=8)
    result = tfcaf.explain(model, _images(2, seed=8), snapshot_every=10, optimizer="adam",
                           max_iterations=100, tolerance=0.0)
    assert result.heatmaps.shape == (2, H, W)
    assert result.heatmaps.min() == 0.0 and result.heatmaps.max() == 1.0
    assert (result.iterations == 100).all()
    assert result.snapshots.shape == (2, 10, H, W)


@pytest.mark.parametrize("targets,message", [
    ([7, -1], r"\[0, 4\); got -1, 7$"), ([0, 1, 2], "B=2"),
    (np.zeros((2, 0), int), "T >= 1"), ([0.5, 1.0], "integer class ids")])
def test_bad_targets_are_rejected(targets, message):
    with pytest.raises(ValueError, match=message):
        tfcaf.explain(_gap_dense_model(), _images(2), method="l2caf_specific",
                      targets=targets)


def test_unknown_options_are_rejected():
    model = _gap_dense_model()
    with pytest.raises(ValueError, match="unknown filter 'box'"):
        tfcaf.explain(model, _images(1), filter="box")
    with pytest.raises(ValueError, match="unknown method"):
        tfcaf.explain(model, _images(1), method="lime")
    with pytest.raises(TfcafError, match="not_an_option"):
        tfcaf.explain(model, _images(1), not_an_option=1)
    with pytest.raises(TfcafError, match="'cam'.*filter"):
        tfcaf.explain(model, _images(1), method="cam", filter="l2norm")


def test_gradcam_on_normalised_embedding_explains_the_embedding_before_it():
    model, dense = _embedding_model(9, normalised=True)
    images = np.abs(_images(2, seed=9))
    result = tfcaf.explain(model, images, method="gradcam")
    kernel, bias = dense.kernel.numpy(), dense.bias.numpy()
    for i in range(2):
        # u·sg(u) on the pre-normalisation embedding u (through the
        # normalisation the gradient of e·sg(e) is exactly zero).
        u = images[i].mean(axis=(0, 1)) @ kernel + bias
        expected = np.maximum(images[i] @ (kernel @ u / (H * W)), 0)
        np.testing.assert_allclose(result.maps[i], expected, rtol=1e-4, atol=1e-6)
        assert result.maps[i].max() > 1e-3


@pytest.mark.parametrize("shape,message", [
    ((2, 9, 8, CHANNELS), r"wrong shape, shape \(2, 9, 8, 6\); the model expects \(B, 8, 8, 6\)"),
    ((2, H, W, 3), r"wrong shape, shape \(2, 8, 8, 3\); the model expects \(B, 8, 8, 6\)"),
    ((H, W, CHANNELS), r"wrong shape, shape \(8, 8, 6\)"),
    ((0, H, W, CHANNELS), r"empty batch, shape \(0, 8, 8, 6\); the model expects \(B, 8, 8, 6\)"),
])
@pytest.mark.parametrize("method", ["l2caf", "gradcam"])
def test_images_of_the_wrong_shape_or_an_empty_batch_are_rejected(shape, message, method):
    with pytest.raises(TfcafError, match=message):
        tfcaf.explain(_gap_dense_model(), np.zeros(shape, "float32"), method=method)


def test_open_input_size_takes_any_size_but_checks_channels():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, CHANNELS))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 1)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(CLASSES)(x))
    for size in ((8, 8), (10, 12)):
        images = np.random.default_rng(0).normal(size=(1,) + size + (CHANNELS,))
        result = tfcaf.explain(model, images.astype("float32"), method="gradcam")
        assert result.heatmaps.shape == (1,) + size
    with pytest.raises(TfcafError, match=r"expects \(B, any, any, 6\)"):
        tfcaf.explain(model, np.zeros((1, 8, 8, 3), "float32"))


@pytest.mark.parametrize("method", ["l2caf", "cam"])
def test_non_finite_images_are_rejected_by_index(method):
    model = _gap_dense_model()
    images = _images(4)
    images[1, 2, 3, 0] = np.nan
    images[3, 0, 0, 5] = -np.inf
    with pytest.raises(TfcafError, match=r"image\(s\) \[1, 3\] .*NaN or infinite"):
        tfcaf.explain(model, images, method=method)
    with pytest.raises(TfcafError, match=r"\[0, 1\]"):
        Explainer(model).explain(np.full((2, H, W, CHANNELS), np.nan, "float32"), method)
