"""What a model's output is: logits or an embedding, found from its final
leaf layer whatever layer type computes it (docs/method.md §2)."""

import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcaf.caf import Explainer, output_kind
from tfcaf.errors import TfcafError


def _l2_lambda(name="l2"):
    return keras.layers.Lambda(lambda e: tf.math.l2_normalize(e, axis=-1), name=name)


FINALS = {
    "UnitNormalization": (lambda: keras.layers.UnitNormalization(name="l2"), "embedding"),
    "Lambda(l2_normalize)": (_l2_lambda, "embedding"),
    "Lambda(ops.normalize)": (lambda: keras.layers.Lambda(keras.ops.normalize, name="l2"),
                              "embedding"),
    "Dense": (None, "logits"),
    "Lambda(x * 2)": (lambda: keras.layers.Lambda(lambda e: e * 2.0, name="double"), "logits"),
    # Close to a normalisation, but not one: not taken for one.
    "Lambda(x / (1 + |x|))": (lambda: keras.layers.Lambda(
        lambda e: e / (1.0 + tf.norm(e, axis=-1, keepdims=True)), name="almost"), "logits"),
    "LayerNormalization": (lambda: keras.layers.LayerNormalization(name="ln"), "logits"),
}


def _model(final=None, seed=0, nested=False):
    """(model, embedding model) for 8x8x3 images: Conv -> GAP -> Dense(5)
    [-> `final()`], the final layer inside a nested sub-model when
    `nested`; the embedding model is the same layers without `final`."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")
    dense = keras.layers.Dense(5, name="dense")
    embedding = dense(keras.layers.GlobalAveragePooling2D()(conv(inputs)))
    if final is None:
        return keras.Model(inputs, embedding), keras.Model(inputs, embedding)
    if nested:
        inner = keras.Input((5,))
        tail = keras.Model(inner, final()(keras.layers.Identity()(inner)), name="tail")
        return keras.Model(inputs, tail(embedding)), keras.Model(inputs, embedding)
    return keras.Model(inputs, final()(embedding)), keras.Model(inputs, embedding)


def _images(n=2, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, 8, 8, 3)).astype("float32")


@pytest.mark.parametrize("final", list(FINALS))
def test_output_kind_of_the_final_leaf_layer(final):
    build, expected = FINALS[final]
    model, _ = _model(build)
    assert output_kind.guess(model)[0] == expected
    assert Explainer(model).output == expected


def test_normalisation_nested_in_a_sub_model_makes_an_embedding():
    model, embedding = _model(_l2_lambda, nested=True)
    explainer = Explainer(model)
    assert explainer.output == "embedding"
    x = _images()
    # The gradient head stops before the normalisation, inside the sub-model.
    np.testing.assert_allclose(explainer.gradient_head(explainer.split.features(x)),
                               embedding(x), rtol=1e-5, atol=1e-6)


def test_name_rule_is_kept():
    model, _ = _model(lambda: keras.layers.Identity(name="embedding"))
    assert output_kind.guess(model) == (
        "embedding", "final layer 'embedding' is named like an embedding")


def test_decision_is_logged(caplog):
    model, _ = _model(_l2_lambda)
    with caplog.at_level(logging.INFO, logger="tfcaf"):
        Explainer(model)
        Explainer(model, output="logits")
    messages = [r.getMessage() for r in caplog.records if r.name == "tfcaf"]
    assert "output: embedding (final layer 'l2' is an L2 normalisation); pass output= to " \
        "override" in messages
    assert "output: logits (passed as output=)" in messages


def test_bad_output_is_named():
    model, _ = _model()
    with pytest.raises(TfcafError, match=r"logits, embedding.*'probabilities'"):
        Explainer(model, output="probabilities")


def test_gradcam_on_lambda_normalised_embedding_is_the_unit_normalization_one():
    lambda_model, embedding = _model(_l2_lambda, seed=4)
    # The same layers (same weights) normalised by a UnitNormalization.
    unit_model = keras.Model(embedding.input,
                             keras.layers.UnitNormalization()(embedding.output))
    x = _images(seed=4)
    ours = Explainer(lambda_model).explain(x, "gradcam")
    theirs = Explainer(unit_model).explain(x, "gradcam")
    assert ours.maps.max() > 1e-3
    np.testing.assert_allclose(ours.maps, theirs.maps, rtol=1e-5, atol=1e-7)
    # The embedding before the normalisation is explained: as the plain one.
    plain = Explainer(embedding, output="embedding").explain(x, "gradcam")
    np.testing.assert_allclose(ours.maps, plain.maps, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("function,expected", [
    (lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True), output_kind.L2_NORMALIZE),
    (keras.ops.softmax, output_kind.SOFTMAX), (keras.ops.sigmoid, output_kind.SIGMOID),
    (keras.ops.relu, None), (lambda x: x[:, :1], None),
    (lambda x: x / np.linalg.norm(x, axis=0, keepdims=True), None)])
def test_probe(function, expected):
    assert output_kind.probe(function, (6,)) == expected
