"""In-model preprocessing, Caffe LRN and ADL (docs/method.md §3)."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcaf.models import ADL, ImagePreprocessing, LocalResponseNormalization


def _pixels(shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, shape).astype("float32")


def test_caffe_preprocessing_matches_keras_applications():
    x = _pixels((2, 5, 4, 3))
    expected = keras.applications.resnet50.preprocess_input(x.copy())
    got = ImagePreprocessing("caffe")(x).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-4)
    # By hand for one pixel: BGR order minus the BGR means.
    r, g, b = x[0, 0, 0]
    np.testing.assert_allclose(
        got[0, 0, 0], [b - 103.939, g - 116.779, r - 123.68], atol=1e-4)


def test_unit_preprocessing_divides_by_255():
    x = _pixels((1, 3, 3, 3))
    np.testing.assert_allclose(ImagePreprocessing("unit")(x).numpy(), x / 255.0,
                               rtol=1e-6)


def test_preprocessing_rejects_bad_mode_and_non_rgb():
    with pytest.raises(ValueError, match="unknown preprocessing mode 'bgr'"):
        ImagePreprocessing("bgr")
    with pytest.raises(ValueError, match="'prep'.*RGB images"):
        ImagePreprocessing("unit", name="prep")(np.zeros((1, 4, 4, 1), "float32"))


def _lrn_reference(x, size, alpha, beta, k):
    """Caffe's formula with an explicit loop over channels."""
    out = np.empty_like(x, dtype=np.float64)
    channels = x.shape[-1]
    half = size // 2
    for c in range(channels):
        lo, hi = max(0, c - half), min(channels, c + half + 1)
        scale = k + alpha / size * np.sum(x[..., lo:hi].astype(np.float64) ** 2, -1)
        out[..., c] = x[..., c] / scale ** beta
    return out


def test_lrn_matches_caffe_formula():
    x = np.random.default_rng(1).normal(0, 30, (2, 3, 3, 9)).astype("float32")
    layer = LocalResponseNormalization(size=5, alpha=1e-4, beta=0.75, k=1.0)
    np.testing.assert_allclose(layer(x).numpy(), _lrn_reference(x, 5, 1e-4, 0.75, 1.0),
                               rtol=1e-5)
    with pytest.raises(ValueError, match="positive odd"):
        LocalResponseNormalization(size=4)


def _feature(attention):
    """(B, H, W) attention -> (B, H, W, 2) features whose channel mean is
    exactly `attention` (both channels equal)."""
    a = np.asarray(attention, "float32")
    return np.stack([a, a], axis=-1)


# Image 0: max 8, gamma 0.5 -> threshold 4: positions < 4 are kept (1);
# 4 itself is dropped. Image 1: max 2 -> threshold 1, only 0.5 is kept.
ATTENTION = [[[1, 4, 8], [3, 5, 7]], [[2, 2, 2], [1, 0.5, 2]]]
DROP_MASK = [[[1, 0, 0], [1, 0, 0]], [[0, 0, 0], [0, 1, 0]]]


def test_adl_drop_mask_keeps_exactly_positions_below_gamma_max():
    layer = ADL(drop_rate=1.0, gamma=0.5)
    x = _feature(ATTENTION)
    drop_mask, _ = layer.maps(x)
    np.testing.assert_array_equal(drop_mask.numpy()[..., 0], DROP_MASK)
    # drop_rate 1: every training call applies the drop mask, which zeroes
    # the most-attended positions (attention >= gamma * max).
    out = layer(x, training=True).numpy()
    np.testing.assert_array_equal(out, x * np.asarray(DROP_MASK, "float32")[..., None])


def test_adl_importance_map_is_sigmoid_of_channel_mean():
    x = np.random.default_rng(2).normal(0, 2, (2, 3, 4, 5)).astype("float32")
    layer = ADL(drop_rate=0.0, gamma=0.9)
    sigmoid = 1.0 / (1.0 + np.exp(-x.mean(axis=-1, keepdims=True)))
    np.testing.assert_allclose(layer.maps(x)[1].numpy(), sigmoid, rtol=1e-5)
    # drop_rate 0: every training call applies the importance map.
    np.testing.assert_allclose(layer(x, training=True).numpy(), x * sigmoid,
                               rtol=1e-5, atol=1e-6)


def test_adl_is_identity_at_inference():
    x = np.random.default_rng(3).normal(0, 1, (2, 4, 4, 3)).astype("float32")
    layer = ADL(drop_rate=1.0, gamma=0.1)
    np.testing.assert_array_equal(layer(x).numpy(), x)
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x)
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, layer(inputs))
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)


def _drop_chosen(outputs, x):
    """Whether each training output used the drop mask: it zeroes the
    (positive) most-attended position, the importance map never does."""
    return np.asarray([o[0, 0, 0, 0] == 0.0 for o in outputs])


def test_adl_chooses_drop_mask_with_frequency_drop_rate_in_compiled_calls():
    x = np.ones((1, 2, 2, 1), "float32")
    x[0, 0, 0, 0] = 5.0  # the peak, dropped by the drop mask
    layer = ADL(drop_rate=0.75, gamma=0.9, seed=7)
    step = tf.function(lambda t: layer(t, training=True))
    n = 1000
    chosen = _drop_chosen([step(x).numpy() for _ in range(n)], x)
    tolerance = 4 * np.sqrt(n * 0.75 * 0.25)
    assert abs(chosen.sum() - 0.75 * n) < tolerance
    # Not a fixed pattern: both choices occur, in runs of varying length.
    assert 0 < chosen.sum() < n and np.any(chosen[1:] != chosen[:-1])


_MIRRORED = textwrap.dedent("""
    import json
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tfcaf.models import ADL
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    x = np.ones((1, 2, 2, 1), "float32"); x[0, 0, 0, 0] = 5.0
    with strategy.scope():
        layer = ADL(drop_rate=0.75, gamma=0.9, seed=3)
    @tf.function
    def step():
        return strategy.run(lambda: layer(tf.constant(x), training=True)[0, 0, 0, 0])
    values = [strategy.experimental_local_results(step()) for _ in range(300)]
    print(json.dumps([[float(v) == 0.0 for v in vs] for vs in values]))
""")


def test_adl_draws_independently_per_replica():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    out = subprocess.run([sys.executable, "-c", _MIRRORED], capture_output=True,
                         text=True, env=env, timeout=300, check=True)
    chosen = np.asarray(json.loads(out.stdout.strip().splitlines()[-1]))
    n = len(chosen)
    assert chosen.shape == (n, 2)
    tolerance = 4 * np.sqrt(n * 0.75 * 0.25)
    for replica in range(2):
        assert abs(chosen[:, replica].sum() - 0.75 * n) < tolerance
    # Independent replicas disagree with probability 2 * 0.75 * 0.25.
    p = 2 * 0.75 * 0.25
    disagree = np.sum(chosen[:, 0] != chosen[:, 1])
    assert abs(disagree - p * n) < 4 * np.sqrt(n * p * (1 - p))


def test_adl_rejects_bad_arguments_and_shapes():
    with pytest.raises(ValueError, match="drop_rate must be in"):
        ADL(drop_rate=1.5)
    with pytest.raises(ValueError, match="gamma must be in"):
        ADL(gamma=-0.1)
    with pytest.raises(ValueError, match="'adl_x'.*4-D"):
        ADL(name="adl_x")(np.zeros((2, 3), "float32"))


def test_layers_round_trip_through_keras_file(tmp_path):
    inputs = keras.Input((6, 6, 3))
    x = ImagePreprocessing("caffe")(inputs)
    x = LocalResponseNormalization(size=3, alpha=2e-4, beta=0.5, k=2.0)(x)
    x = ADL(drop_rate=0.3, gamma=0.7, seed=5)(x)
    model = keras.Model(inputs, x)
    path = tmp_path / "layers.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = _pixels((2, 6, 6, 3), seed=4)
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
    for original, revived in zip(model.layers[1:], loaded.layers[1:]):
        assert type(revived) is type(original)
        assert revived.get_config() == original.get_config()
