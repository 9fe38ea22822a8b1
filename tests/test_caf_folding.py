"""Folding a head's linear first layers (docs/method.md §1): every rule must
equal re-running the head on A ⊙ c, and unfoldable heads must fall back."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcaf.caf import folding, objective
from tfcaf.caf.split import split_model

H, W, C = 6, 6, 4
layers = keras.layers


def _split(build_head, seed):
    """Input (6, 6, 4) -> 'features' 1x1 conv -> `build_head`, split at
    'features' (the head is everything after it)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((H, W, C))
    features = layers.Conv2D(C, 1, name="features")(inputs)
    return split_model(keras.Model(inputs, build_head(features)), "features")


def _flatten_dense(a):
    x = layers.Dense(7, activation="relu")(layers.Flatten()(a))
    return layers.Dense(5)(x)


def _bottleneck(a, projection):
    """A ResNet bottleneck block (stride 2 with a projection shortcut, as
    conv5_block1 of ResNet50; stride 1 with the identity otherwise), then
    GAP -> Dense."""
    stride = 2 if projection else 1
    shortcut = a
    if projection:
        shortcut = layers.BatchNormalization()(layers.Conv2D(8, 1, strides=stride)(a))
    x = layers.Conv2D(3, 1, strides=stride)(a)
    x = layers.Activation("relu")(layers.BatchNormalization()(x))
    x = layers.Conv2D(3, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(8 if projection else C, 1)(x)
    x = layers.Activation("relu")(layers.Add()([shortcut, x]))
    return layers.Dense(5)(layers.GlobalAveragePooling2D()(x))


def _gap_dense_tanh(a):
    x = layers.Dense(6, activation="tanh")(layers.GlobalAveragePooling2D()(a))
    return layers.Dense(5)(x)


def _conv3x3_first(a):
    x = layers.Conv2D(3, 3, activation="relu")(a)
    return layers.Dense(5)(layers.GlobalAveragePooling2D()(x))


def _randomise_batch_norm(split):
    """Non-trivial inference statistics, so BN is not the identity."""
    rng = np.random.default_rng(0)
    for layer in split.head.layers:
        if isinstance(layer, layers.BatchNormalization):
            for weight in layer.weights:
                weight.assign(rng.uniform(0.5, 1.5, weight.shape).astype("float32"))


CASES = [  # head, rule kinds, whether the tail still reads A ⊙ c
    (_flatten_dense, ["flatten_dense"], False),
    (lambda a: _bottleneck(a, projection=True), ["conv1x1", "conv1x1"], False),
    (lambda a: _bottleneck(a, projection=False), ["conv1x1"], True),
    (_gap_dense_tanh, ["gap_dense"], False),
]


@pytest.mark.parametrize("build_head,kinds,reads_map", CASES)
def test_folded_head_equals_running_the_head(build_head, kinds, reads_map):
    split = _split(build_head, seed=len(kinds) + reads_map)
    _randomise_batch_norm(split)
    folded = folding.fold_head(split.head)
    assert sorted(r.kind for r in folded.rules) == sorted(kinds)
    assert folded.reads_filtered_map == reads_map
    rng = np.random.default_rng(1)
    maps = tf.constant(rng.normal(size=(5, H, W, C)).astype("float32"))
    c = tf.constant(rng.normal(size=(5, H, W)).astype("float32"))
    expected = split.head(maps * c[..., None]).numpy()
    outputs = objective.filtered_outputs(split, maps)
    np.testing.assert_allclose(outputs(c, None), expected, rtol=1e-4, atol=1e-5)
    rows = tf.constant([3, 0], tf.int32)
    np.testing.assert_allclose(outputs(tf.gather(c, rows), rows), expected[[3, 0]],
                               rtol=1e-4, atol=1e-5)


def test_unfoldable_head_falls_back_and_matches():
    split = _split(_conv3x3_first, seed=7)
    assert folding.fold_head(split.head) is None
    rng = np.random.default_rng(2)
    maps = tf.constant(rng.normal(size=(3, H, W, C)).astype("float32"))
    c = tf.constant(rng.normal(size=(3, H, W)).astype("float32"))
    expected = split.head(maps * c[..., None]).numpy()
    np.testing.assert_allclose(objective.filtered_outputs(split, maps)(c, None), expected,
                               rtol=1e-5, atol=1e-6)


def test_shared_reader_is_not_folded():
    """A Flatten whose output feeds two layers cannot be folded into one."""
    def head(a):
        flat = layers.Flatten()(a)
        return layers.Add()([layers.Dense(5)(flat), layers.Dense(5)(flat)])
    split = _split(head, seed=8)
    assert folding.fold_head(split.head) is None
