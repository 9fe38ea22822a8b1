"""tfcaf.losses against brute-force numpy references, argument checks, and
the Keras wrappers (tfa parity itself is in test_losses_golden.py)."""

import numpy as np
import pytest
import tensorflow as tf
import keras

from tfcaf import losses


def _numpy_distances(x, metric):
    diff = x[:, None, :] - x[None, :, :]
    if metric == "L2":
        return np.sqrt(np.sum(diff ** 2, axis=-1))
    if metric == "squared-L2":
        return np.sum(diff ** 2, axis=-1)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    return np.maximum(1.0 - unit @ unit.T, 0.0)


def numpy_triplet_semihard(labels, x, margin, metric):
    """Loop over positive pairs, straight from docs/method.md §4."""
    dist = _numpy_distances(x, metric)
    terms = []
    for a in range(len(labels)):
        negatives = dist[a][labels != labels[a]]
        for p in range(len(labels)):
            if p == a or labels[p] != labels[a]:
                continue
            farther = negatives[negatives > dist[a, p]]
            if farther.size:
                d_an = farther.min()
            elif negatives.size:
                d_an = negatives.max()
            else:
                d_an = dist[a].min()
            terms.append(max(dist[a, p] - d_an + margin, 0.0))
    return float(np.mean(terms)) if terms else 0.0


def numpy_npairs(targets, similarity):
    """Mean softmax cross-entropy over rows with a target, rows normalised."""
    logits = similarity - similarity.max(axis=1, keepdims=True)
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    mass = targets.sum(axis=1)
    rows = mass > 0
    per_row = -(targets[rows] / mass[rows, None] * log_softmax[rows]).sum(axis=1)
    return float(per_row.mean()) if rows.any() else 0.0


@pytest.mark.parametrize("metric", ["L2", "squared-L2", "angular"])
@pytest.mark.parametrize("seed", [0, 1])
def test_triplet_matches_numpy_reference(metric, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 12, size=40)  # leaves some singletons
    x = rng.normal(size=(40, 6))
    got = losses.triplet_semihard_loss(labels, x, margin=0.3, distance_metric=metric)
    assert got.dtype == tf.float64
    want = numpy_triplet_semihard(labels, x, 0.3, metric)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-9)


@pytest.mark.parametrize("metric", ["L2", "squared-L2", "angular"])
def test_triplet_gradient_matches_finite_differences(metric):
    rng = np.random.default_rng(3)
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 3])
    x = rng.normal(size=(8, 3))
    theoretical, numerical = tf.test.compute_gradient(
        lambda e: losses.triplet_semihard_loss(labels, e, 0.5, metric), [x])
    np.testing.assert_allclose(theoretical[0], numerical[0], atol=1e-6)


def test_triplet_without_positive_pairs_is_zero_with_zero_gradient():
    x = tf.constant(np.random.default_rng(0).normal(size=(5, 3)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = losses.triplet_semihard_loss([4, 3, 2, 1, 0], x)
    assert loss.numpy() == 0.0
    np.testing.assert_array_equal(tape.gradient(loss, x).numpy(), 0.0)


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16])
def test_half_precision_is_computed_in_float32(dtype):
    rng = np.random.default_rng(5)
    labels = np.arange(16) // 4
    x = tf.cast(rng.normal(size=(16, 8)), dtype)
    half = losses.triplet_semihard_loss(labels, x, 0.2)
    full = losses.triplet_semihard_loss(labels, tf.cast(x, tf.float32), 0.2)
    assert half.dtype == dtype
    # Only the final cast rounds.
    assert half.numpy() == tf.cast(full, dtype).numpy()
    pairs = losses.npairs_embedding_loss(np.repeat(np.arange(8), 2), x)
    assert pairs.dtype == dtype


def test_losses_work_with_an_unknown_batch_size():
    rng = np.random.default_rng(6)
    labels = np.repeat(np.arange(6), 2).astype(np.int32)
    x = rng.normal(size=(12, 5)).astype(np.float32)
    specs = [tf.TensorSpec([None], tf.int32), tf.TensorSpec([None, 5], tf.float32)]
    triplet = tf.function(losses.triplet_semihard_loss, input_signature=specs)
    npairs = tf.function(losses.npairs_embedding_loss, input_signature=specs)
    np.testing.assert_allclose(triplet(labels, x).numpy(),
                               losses.triplet_semihard_loss(labels, x).numpy(),
                               rtol=1e-6)
    np.testing.assert_allclose(npairs(labels, x).numpy(),
                               losses.npairs_embedding_loss(labels, x).numpy(),
                               rtol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels"):
        triplet(labels[:-1], x)
    with pytest.raises(tf.errors.InvalidArgumentError, match="pair"):
        npairs(np.roll(labels, 1), x)


def test_argument_errors_name_the_argument():
    x = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="distance_metric"):
        losses.triplet_semihard_loss([0, 0, 1, 1], x, distance_metric="cosine")
    with pytest.raises(ValueError, match="labels has 3 entries"):
        losses.triplet_semihard_loss([0, 0, 1], x)
    with pytest.raises(ValueError, match=r"labels must have shape \(B,\)"):
        losses.triplet_semihard_loss(np.zeros((4, 2)), x)
    with pytest.raises(ValueError, match=r"embeddings must have shape \(B, D\)"):
        losses.triplet_semihard_loss([0, 0, 1, 1], np.zeros((4, 3, 1), np.float32))
    with pytest.raises(TypeError, match="embeddings must be floating"):
        losses.triplet_semihard_loss([0, 0, 1, 1], np.zeros((4, 3), np.int32))
    with pytest.raises(ValueError, match="distance_metric callable"):
        losses.triplet_semihard_loss([0, 0, 1, 1], x, distance_metric=lambda e: e)
    with pytest.raises(ValueError, match="odd batch size B = 3"):
        losses.npairs_embedding_loss([0, 0, 1], x[:3])
    with pytest.raises(tf.errors.InvalidArgumentError, match="pair differ"):
        losses.npairs_embedding_loss([0, 1, 1, 1], x)
    with pytest.raises(ValueError, match="similarity must be square"):
        losses.npairs_loss([0, 1], np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="l2_reg"):
        losses.npairs_embedding_loss([0, 0, 1, 1], x, l2_reg=-1.0)


def test_npairs_embedding_loss_regulariser_matches_numpy():
    rng = np.random.default_rng(7)
    labels = np.repeat([3, 1, 4, 1, 5], 2)
    x = rng.normal(size=(10, 4))
    anchors, positives = x[0::2], x[1::2]
    base = numpy_npairs((labels[0::2, None] == labels[None, 0::2]).astype(float),
                        anchors @ positives.T)
    reg = 0.25 * 0.002 * (np.mean(np.sum(anchors ** 2, 1))
                          + np.mean(np.sum(positives ** 2, 1)))
    got = losses.npairs_embedding_loss(labels, x, l2_reg=0.002)
    np.testing.assert_allclose(got.numpy(), base + reg, rtol=1e-9)
    got = losses.npairs_embedding_loss(labels, x)
    np.testing.assert_allclose(got.numpy(), base, rtol=1e-9)


def test_npairs_multilabel_leaves_rows_without_labels_out():
    rng = np.random.default_rng(8)
    labels = (rng.random((6, 4)) < 0.4).astype(np.float64)
    labels[[1, 4]] = 0.0
    similarity = rng.normal(size=(6, 6))
    got = losses.npairs_multilabel_loss(labels, similarity)
    want = numpy_npairs(labels @ labels.T, similarity)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-9)
    assert losses.npairs_multilabel_loss(np.zeros((3, 2)), np.eye(3)).numpy() == 0.0


@pytest.mark.parametrize("loss_obj", [
    losses.TripletSemiHardLoss(margin=0.2, distance_metric="angular"),
    losses.NpairsLoss(),
    losses.NpairsMultilabelLoss(),
    losses.NpairsEmbeddingLoss(l2_reg=0.01),
], ids=lambda obj: type(obj).__name__)
def test_keras_losses_serialise(loss_obj):
    config = keras.saving.serialize_keras_object(loss_obj)
    assert config["registered_name"] == f"tfcaf>{type(loss_obj).__name__}"
    restored = keras.saving.deserialize_keras_object(config)
    assert type(restored) is type(loss_obj)
    assert restored.get_config() == loss_obj.get_config()


def test_keras_losses_reject_sample_weight():
    with pytest.raises(ValueError, match="sample_weight"):
        losses.TripletSemiHardLoss()([0, 0, 1, 1], np.ones((4, 2)),
                                     sample_weight=np.ones(4))


def test_keras_model_trains_and_reloads_with_triplet_loss(tmp_path):
    rng = np.random.default_rng(9)
    labels = np.repeat(np.arange(4), 4)
    x = (rng.normal(size=(16, 6)) + labels[:, None]).astype(np.float32)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4),
                              keras.layers.UnitNormalization()])
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=losses.TripletSemiHardLoss(margin=0.2))
    history = model.fit(x, labels, batch_size=16, epochs=3, shuffle=False, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert isinstance(reloaded.loss, losses.TripletSemiHardLoss)
    assert reloaded.loss.margin == pytest.approx(0.2)
    np.testing.assert_allclose(reloaded.evaluate(x, labels, batch_size=16, verbose=0),
                               model.evaluate(x, labels, batch_size=16, verbose=0),
                               rtol=1e-6)
