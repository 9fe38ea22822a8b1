"""The solver's head runner against a plain Keras call and TensorFlow's
own gradient."""

import keras
import numpy as np
import tensorflow as tf

from tfcaf.caf.head_runner import HeadRunner
from tfcaf.caf.split import split_model


def _value_and_input_gradient(fn, x, weights):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
        total = tf.reduce_sum(y * weights)
    return y, tape.gradient(total, x)


def test_dense_heads_give_keras_values_and_autodiff_input_gradients():
    # Flatten -> Dense(relu) -> Dropout -> Dense(softmax): split_model turns
    # the last layer into its logits, which the runner also handles.
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 4, 3))
    features = keras.layers.Conv2D(5, 3, padding="same", name="features")(inputs)
    x = keras.layers.Dense(16, activation="relu")(keras.layers.Flatten()(features))
    x = keras.layers.Dropout(0.5)(x)
    x = keras.layers.Dense(7, use_bias=False)(x)
    outputs = keras.layers.Dense(6, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    head = split_model(model, "features").head
    a = tf.constant(np.random.default_rng(0).normal(size=(3, 4, 4, 5)), tf.float32)
    weights = tf.constant(np.random.default_rng(1).normal(size=(3, 6)), tf.float32)
    expected, expected_grad = _value_and_input_gradient(
        lambda t: head(t, training=False), a, weights)
    got, grad = _value_and_input_gradient(HeadRunner(head), a, weights)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-5, atol=1e-6)
    # The head returns logits: their softmax is the full model's output.
    images = tf.constant(np.random.default_rng(2).normal(size=(2, 4, 4, 3)), tf.float32)
    split = split_model(model, "features")
    np.testing.assert_allclose(tf.nn.softmax(HeadRunner(split.head)(split.features(images))),
                               model(images), rtol=1e-5, atol=1e-6)
