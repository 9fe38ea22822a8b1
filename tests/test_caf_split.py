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


# A final softmax or sigmoid is left out, whatever layer computes it
# (docs/method.md §2, "What is explained"). Reference: the same layers
# (same weights) written without it.

def _softmax_lambda(x):
    import tensorflow as tf
    return tf.nn.softmax(x)


FINALS = {
    "Softmax()": lambda: keras.layers.Softmax(name="final"),
    "Activation('softmax')": lambda: keras.layers.Activation("softmax", name="final"),
    "Activation(softmax)": lambda: keras.layers.Activation(keras.activations.softmax,
                                                           name="final"),
    "Lambda(tf.nn.softmax)": lambda: keras.layers.Lambda(_softmax_lambda, name="final"),
    "Activation('sigmoid')": lambda: keras.layers.Activation("sigmoid", name="final"),
    "Dense(softmax)": "softmax",
    "Dense(sigmoid)": "sigmoid",
}


def _classifier_and_reference(final, seed=0):
    """Conv -> GAP -> Dense(3) -> `final` on 8x8x3 images, and the same
    layers without the softmax/sigmoid: the reference logits model."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")
    pooled = keras.layers.GlobalAveragePooling2D()(conv(inputs))
    if isinstance(final, str):  # the Dense layer's own activation
        dense = keras.layers.Dense(3, activation=final, name="dense")
        model = keras.Model(inputs, dense(pooled))
        plain = keras.layers.Dense(3, name="dense_logits")
        reference = keras.Model(inputs, plain(pooled))
        plain.set_weights(dense.get_weights())
        return model, reference, dense
    dense = keras.layers.Dense(3, name="dense")
    logits = dense(pooled)
    return keras.Model(inputs, final()(logits)), keras.Model(inputs, logits), dense


def _images(n=2, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 8, 8, 3)).astype("float32")


@pytest.mark.parametrize("final", list(FINALS))
def test_final_softmax_or_sigmoid_is_left_out(final):
    from tfcaf.caf import Explainer, baselines
    model, reference, dense = _classifier_and_reference(FINALS[final])
    x = _images()
    split = split_model(model)
    features = split.features(x)
    np.testing.assert_allclose(split.head(features), reference(x), rtol=1e-5, atol=1e-6)
    # The stripped layer is not counted: the head is still Dense(GAP(A)).
    assert split.dense is dense
    targets = np.array([0, 2])
    ours = Explainer(model).explain(x, "gradcam", targets=targets).maps
    theirs = Explainer(reference).explain(x, "gradcam", targets=targets).maps
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)
    assert ours.max() > 0
    # Grad-CAM on the probabilities (logits=False keeps the final layer) is
    # another map: the test would see a softmax left in.
    probabilities = split_model(model, logits=False)
    np.testing.assert_allclose(probabilities.head(features), model(x), rtol=1e-5, atol=1e-6)
    on_probabilities = baselines.gradcam(probabilities.head, features, targets).numpy()
    assert not np.allclose(on_probabilities, ours, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("final", ["Activation('softmax')", "Softmax()", "Dense(softmax)"])
def test_cam_after_a_left_out_softmax_is_the_hand_computed_map(final):
    from tfcaf.caf import Explainer
    model, _, dense = _classifier_and_reference(FINALS[final], seed=1)
    x = _images(seed=1)
    explainer = Explainer(model)
    assert explainer.supports("cam") is None
    result = explainer.explain(x, "cam", targets=[1, 2])
    feature_maps = explainer.split.features(x).numpy()
    kernel = dense.kernel.numpy()
    expected = np.einsum("bhwc,cb->bhw", feature_maps, kernel[:, [1, 2]])
    np.testing.assert_allclose(result.maps, expected, rtol=1e-5, atol=1e-6)
    # With the softmax kept (logits=False) the head is not linear in GAP(A):
    # no CAM, no closed form.
    assert split_model(model, logits=False).dense is None


def test_left_out_softmax_in_sequential_and_nested_models():
    keras.utils.set_random_seed(2)
    conv = keras.layers.Conv2D(4, 3, padding="same", activation="relu")
    dense = keras.layers.Dense(3)
    sequential = keras.Sequential([keras.Input((8, 8, 3)), conv,
                                   keras.layers.GlobalAveragePooling2D(), dense,
                                   keras.layers.Softmax()])
    # The same layers with the classifier, softmax last, as a nested model.
    inputs = keras.Input((8, 8, 3))
    classifier = keras.Sequential([keras.Input((8, 8, 4)),
                                   keras.layers.GlobalAveragePooling2D(), dense,
                                   keras.layers.Activation("softmax")], name="classifier")
    nested = keras.Model(inputs, classifier(keras.Model(inputs, conv(inputs))(inputs)))
    x = _images(seed=2)
    logits = keras.ops.convert_to_numpy(dense(keras.ops.mean(conv(x), axis=(1, 2))))
    for model in (sequential, nested):
        split = split_model(model)
        assert split.dense is dense
        np.testing.assert_allclose(split.head(split.features(x)), logits, rtol=1e-5, atol=1e-6)


def test_lambda_l2_normalisation_is_left_out_when_unnormalized():
    import tensorflow as tf
    keras.utils.set_random_seed(3)
    inputs = keras.Input((8, 8, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    embedding = keras.layers.Dense(5)(pooled)
    normalised = keras.layers.Lambda(lambda e: tf.math.l2_normalize(e, axis=-1))(embedding)
    model = keras.Model(inputs, normalised)
    x = _images(seed=3)
    split = split_model(model, unnormalized=True)
    np.testing.assert_allclose(split.head(split.features(x)), keras.Model(inputs, embedding)(x),
                               rtol=1e-5, atol=1e-6)
    assert split.dense is not None
    kept = split_model(model)  # by default the normalisation stays
    np.testing.assert_allclose(kept.head(kept.features(x)), model(x), rtol=1e-5, atol=1e-6)
    assert kept.dense is None
