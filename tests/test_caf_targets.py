"""Explicit targets: the similarity of an embedding to a reference, against
an independent computation on hand-split models and a planted optimum."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfcaf
from tfcaf.caf import Explainer, Similarity
from tfcaf.errors import TfcafError

SIZE, DIM = 16, 5


def _parts(seed=0):
    """(embedding model, features model, unnormalised head): the model
    split by hand at 'last_conv', the head GAP -> Dense written out."""
    keras.utils.set_random_seed(seed)
    images = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv")(images)
    features = keras.layers.Conv2D(8, 3, padding="same", activation="relu",
                                   name="last_conv")(x)
    dense = keras.layers.Dense(DIM, name="embedding")
    embedding = dense(keras.layers.GlobalAveragePooling2D()(features))
    model = keras.Model(images, keras.layers.UnitNormalization()(embedding))

    def head(a):
        return tf.matmul(tf.reduce_mean(a, axis=[1, 2]), dense.kernel) + dense.bias
    return model, keras.Model(images, features), head


def _images(count, seed):
    return np.random.default_rng(seed).uniform(0, 1, (count, SIZE, SIZE, 3)).astype(np.float32)


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_gradcam_of_a_similarity_is_gradcam_of_the_cosine():
    model, features, head = _parts()
    images = _images(3, seed=1)
    references = np.random.default_rng(2).normal(size=(3, DIM)).astype(np.float32)
    a = tf.constant(features(images))
    with tf.GradientTape() as tape:
        tape.watch(a)
        cosine = tf.reduce_sum(tf.math.l2_normalize(head(a), -1) * _unit(references), -1)
        total = tf.reduce_sum(cosine)
    weights = tf.reduce_mean(tape.gradient(total, a), axis=[1, 2])
    expected = tf.nn.relu(tf.einsum("bhwc,bc->bhw", a, weights)).numpy()
    got = tfcaf.explain(model, images, method="gradcam",
                        targets=Similarity(embeddings=3.0 * references))
    np.testing.assert_allclose(got.maps, expected, rtol=1e-5, atol=1e-7)
    assert got.targets is None


def test_a_reference_image_is_its_embedding():
    model, _, _ = _parts()
    images, reference = _images(2, seed=1), _images(1, seed=3)
    by_image = tfcaf.explain(model, images, method="gradcampp",
                             targets=Similarity(images=reference[0]))
    by_embedding = tfcaf.explain(model, images, method="gradcampp",
                                 targets=Similarity(embeddings=model(reference).numpy()[0]))
    np.testing.assert_allclose(by_image.maps, by_embedding.maps, rtol=1e-6)


def test_l2caf_raises_the_similarity_and_finds_a_planted_location():
    """The reference is the head's output on the feature map masked to one
    location p per image: the filter one-hot at p reaches cosine 1, the
    optimum, so the solved map must peak at p; the returned loss is
    −cos(head(A ⊙ c), r) recomputed by hand."""
    model, features, head = _parts(seed=4)
    images = _images(3, seed=5)
    a = features(images).numpy()
    h, w = a.shape[1:3]
    planted = [(2, 3), (9, 12), (14, 5)]
    masks = np.zeros(a.shape[:3], np.float32)
    for k, (y, x) in enumerate(planted):
        masks[k, y, x] = 1.0
    references = head(a * masks[..., None]).numpy()
    result = tfcaf.explain(model, images, method="l2caf_specific", filter="softmax",
                           targets=Similarity(embeddings=references), max_iterations=400)
    peaks = [np.unravel_index(np.argmax(m), (h, w)) for m in result.maps]
    assert [tuple(int(v) for v in p) for p in peaks] == planted
    cosine = tf.reduce_sum(tf.math.l2_normalize(head(a * result.maps[..., None]), -1) *
                           _unit(references), -1).numpy()
    np.testing.assert_allclose(result.losses, -cosine, rtol=1e-4, atol=1e-6)
    assert (cosine > 0.99).all()


@pytest.mark.parametrize("method,target,message", [
    ("l2caf", Similarity(embeddings=np.ones(DIM)),
     r"explains output targets, not a similarity target"),
    ("gradcam", Similarity(embeddings=np.ones(DIM + 1)),
     r"references of shape \(1, 6\); need \(D,\) or \(B, D\) with B=2, D=5"),
    ("gradcam", Similarity(embeddings=np.ones((3, DIM))), r"references of shape \(3, 5\)"),
    ("gradcam", Similarity(embeddings=np.zeros(DIM)), r"a reference is zero or not finite"),
    ("gradcam", Similarity(images=np.ones((2, 8, 8, 3))),
     r"Similarity\(images=...\): got a batch of the wrong shape"),
    ("l2caf_specific", None, r"needs class logits or a Similarity target"),
])
def test_bad_targets_are_one_line(method, target, message):
    model, _, _ = _parts()
    options = {"max_iterations": 5} if method.startswith("l2caf") else {}
    with pytest.raises(TfcafError, match=message):
        Explainer(model).explain(_images(2, seed=1), method, target, **options)


def test_similarity_takes_exactly_one_reference():
    with pytest.raises(TfcafError, match="exactly one of embeddings="):
        Similarity()
    with pytest.raises(TfcafError, match="exactly one of embeddings="):
        Similarity(embeddings=np.ones(3), images=np.ones((4, 4, 3)))
