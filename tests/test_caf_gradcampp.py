"""Grad-CAM++ against hand computations on heads whose gradient is known in
closed form."""

import keras
import numpy as np

import tfcaf

H = W = 5
CHANNELS, CLASSES = 4, 3


def _identity(shape, dtype=None):
    """1x1 convolution kernel that copies its input channels."""
    return np.eye(shape[-1], dtype="float32").reshape(shape)


def _model(seed, squared=False, embedding=False):
    """Input (5, 5, 4) -> identity 1x1 conv 'features' [-> A ⊙ A] -> GAP ->
    Dense ('logits', or 'embedding' for a retrieval-style output)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((H, W, CHANNELS))
    features = keras.layers.Conv2D(
        CHANNELS, 1, use_bias=False, name="features",
        kernel_initializer=_identity)(inputs)
    x = keras.layers.Multiply()([features, features]) if squared else features
    pooled = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(CLASSES, name="embedding" if embedding else "logits")
    return keras.Model(inputs, dense(pooled)), dense


def _images(n, seed):
    return np.random.default_rng(seed).normal(size=(n, H, W, CHANNELS)).astype("float32")


def _gradcampp_reference(a, g):
    """pytorch-grad-cam's GradCAMPlusPlus for one image, in float64 numpy:
    a, g (h, w, C) activations and score gradients -> (h, w) map."""
    a, g = a.astype(np.float64), g.astype(np.float64)
    sums = a.sum(axis=(0, 1))
    alpha = g ** 2 / (2 * g ** 2 + sums * g ** 3 + 1e-6)
    alpha = np.where(g != 0, alpha, 0.0)
    weights = (alpha * np.maximum(g, 0)).sum(axis=(0, 1))
    return np.maximum((a * weights).sum(-1), 0)


def test_dense_gap_head_constant_gradient():
    model, dense = _model(0)
    images = _images(3, seed=0)
    targets = np.array([0, 2, 1])
    result = tfcaf.explain(model, images, method="gradcampp", targets=targets)
    kernel = dense.kernel.numpy()
    for i, t in enumerate(targets):
        # y = Σ_c W[c, t] mean_ij A_ijc: g = W[:, t] / (h·w) at every position.
        g = np.broadcast_to(kernel[:, t] / (H * W), images[i].shape)
        expected = _gradcampp_reference(images[i], g)
        np.testing.assert_allclose(result.maps[i], expected, rtol=1e-4, atol=1e-6)
        assert expected.max() > 0


def test_position_dependent_gradient():
    """Head GAP(A ⊙ A) -> Dense: g_ijc = 2 A_ijc W[c, t] / (h·w), so α
    differs per position and the sign of g follows A's."""
    model, dense = _model(1, squared=True)
    images = _images(2, seed=1)
    targets = np.array([1, 0])
    result = tfcaf.explain(model, images, method="gradcampp", layer="features",
                           targets=targets)
    kernel = dense.kernel.numpy()
    for i, t in enumerate(targets):
        g = 2 * images[i] * kernel[:, t] / (H * W)
        expected = _gradcampp_reference(images[i], g)
        np.testing.assert_allclose(result.maps[i], expected, rtol=1e-4, atol=1e-6)
        assert expected.max() > 0


def test_embedding_scores_e_dot_e():
    model, dense = _model(2, embedding=True)
    images = _images(2, seed=2)
    result = tfcaf.explain(model, images, method="gradcampp")
    assert result.targets is None
    kernel, bias = dense.kernel.numpy(), dense.bias.numpy()
    for i in range(2):
        e = images[i].mean(axis=(0, 1)) @ kernel + bias
        # y = e·sg(e): ∂y/∂A_ij = W e / (h·w) at every position.
        g = np.broadcast_to(kernel @ e / (H * W), images[i].shape)
        np.testing.assert_allclose(result.maps[i], _gradcampp_reference(images[i], g),
                                   rtol=1e-4, atol=1e-6)


def test_zero_gradient_channels_get_no_weight():
    """A channel the target ignores (W[c, t] = 0) must contribute nothing,
    not 0/0 (NaN)."""
    model, dense = _model(3)
    kernel = dense.kernel.numpy()
    kernel[:, 0] = [0.7, 0.0, 0.0, 0.0]
    dense.kernel.assign(kernel)
    images = np.abs(_images(1, seed=3))
    result = tfcaf.explain(model, images, method="gradcampp", targets=[0])
    # Only channel 0 counts: the map is proportional to A[..., 0].
    got = result.maps[0] / result.maps[0].max()
    np.testing.assert_allclose(got, images[0, ..., 0] / images[0, ..., 0].max(), rtol=1e-4)
