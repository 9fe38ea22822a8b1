"""Splitting models into features and head (docs/method.md §1)."""

import keras
import numpy as np
import pytest

from tfcaf.caf.split import split_model

APPLICATIONS = [("ResNet50", 64, "conv5_block3_out"), ("VGG16", 64, "block5_pool"),
                ("DenseNet121", 64, "relu"), ("MobileNetV2", 64, "out_relu"),
                ("InceptionV3", 75, "mixed10")]


def _logits(model, x):
    """Reference pre-softmax logits: the last Dense layer's kernel on the
    penultimate activations, computed with a sub-model and numpy."""
    dense = model.layers[-1]
    penultimate = keras.Model(model.input, dense.input)(x).numpy()
    return penultimate @ dense.kernel.numpy() + dense.bias.numpy()


@pytest.mark.parametrize("name,size,expected_layer", APPLICATIONS)
def test_applications_split_at_last_conv(name, size, expected_layer):
    model = getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3))
    split = split_model(model)
    assert split.layer == expected_layer
    x = np.random.default_rng(0).uniform(0, 1, (2, size, size, 3)).astype("float32")
    logits = split.head(split.features(x)).numpy()
    np.testing.assert_allclose(logits, _logits(model, x), rtol=1e-4, atol=1e-4)
    # VGG16's head is Flatten -> 3 Dense, not Dense(GAP): no closed form.
    has_gap_head = isinstance(model.layers[-2], keras.layers.GlobalAveragePooling2D)
    assert split.dense is (model.layers[-1] if has_gap_head else None)


def test_intermediate_layer_keeps_skip_connections_after_split():
    model = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3))
    split = split_model(model, "conv4_block1_out", logits=False)
    x = np.random.default_rng(1).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(split.head(split.features(x)), model(x), atol=1e-6)
    assert split.dense is None


def test_split_over_a_skip_connection_names_the_layer():
    model = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match="conv4_block1_1_conv.*conv4_block1_add"):
        split_model(model, "conv4_block1_1_conv")


def _nested_model():
    backbone = keras.applications.MobileNetV2(weights=None, include_top=False,
                                              input_shape=(64, 64, 3))
    inputs = keras.Input((64, 64, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(backbone(inputs))
    return keras.Model(inputs, keras.layers.Dense(5)(pooled))


def test_nested_backbone_default_and_inner_layer():
    model = _nested_model()
    x = np.random.default_rng(2).uniform(0, 1, (2, 64, 64, 3)).astype("float32")
    assert split_model(model).layer == "out_relu"
    inner = split_model(model, "block_15_add")
    np.testing.assert_allclose(inner.head(inner.features(x)), model(x), atol=1e-5)


def test_unknown_layer_suggests_close_names():
    with pytest.raises(ValueError, match="no layer 'block_15_addd'.*block_15_add"):
        split_model(_nested_model(), "block_15_addd")


def test_non_4d_layer_is_rejected():
    model = _nested_model()
    with pytest.raises(ValueError, match="4-D"):
        split_model(model, model.layers[-2].name)


def test_sequential_model():
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3),
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(3, activation="softmax")])
    split = split_model(model)
    x = np.random.default_rng(3).normal(size=(2, 16, 16, 3)).astype("float32")
    probabilities = keras.ops.softmax(split.head(split.features(x))).numpy()
    np.testing.assert_allclose(probabilities, model(x), atol=1e-6)
