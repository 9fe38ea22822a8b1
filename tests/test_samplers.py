"""tfcaf.data.samplers: batch composition, reproducibility, errors."""

import collections

import numpy as np
import pytest

from tfcaf.data import samplers

# Classes 11..17 with 1..7 images, plus a class with a negative id.
LABELS = np.concatenate([np.full(n, 10 + n) for n in range(1, 8)] + [np.full(5, -4)])
np.random.default_rng(0).shuffle(LABELS)


def _batches(dataset):
    return [batch.numpy() for batch in dataset]


def test_pk_batches_hold_p_classes_of_k_distinct_images():
    batches = _batches(samplers.pk_batches(LABELS, 3, 4, seed=1, num_batches=50))
    assert len(batches) == 50
    for batch in batches:
        assert batch.shape == (12,) and batch.dtype == np.int64
        assert len(set(batch.tolist())) == 12
        blocks = LABELS[batch].reshape(3, 4)
        # Class-major layout, distinct classes, only classes with >= K images.
        assert np.all(blocks == blocks[:, :1])
        assert len(set(blocks[:, 0].tolist())) == 3
        assert set(blocks[:, 0].tolist()) <= {14, 15, 16, 17, -4}


def test_pk_batches_draw_classes_and_images_uniformly():
    batches = np.stack(_batches(
        samplers.pk_batches(LABELS, 2, 4, seed=2, num_batches=400)))
    class_draws = collections.Counter(LABELS[batches[:, ::4]].ravel().tolist())
    # 5 eligible classes, 800 draws: 160 expected each.
    assert set(class_draws) == {14, 15, 16, 17, -4}
    assert all(110 < n < 210 for n in class_draws.values()), class_draws
    # Every image of class 17 (7 images, 4 drawn per visit) shows up about
    # 4/7 of the visits.
    members = np.flatnonzero(LABELS == 17)
    image_draws = collections.Counter(batches.ravel().tolist())
    visits = class_draws[17]
    for index in members:
        assert 0.4 * visits < image_draws[index] < 0.75 * visits


def test_samplers_are_reproducible_with_a_seed():
    first = _batches(samplers.pk_batches(LABELS, 2, 3, seed=7, num_batches=20))
    again = _batches(samplers.pk_batches(LABELS, 2, 3, seed=7, num_batches=20))
    other = _batches(samplers.pk_batches(LABELS, 2, 3, seed=8, num_batches=20))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    dataset = samplers.npair_batches(LABELS, 8, seed=3, num_batches=5)
    np.testing.assert_array_equal(_batches(dataset), _batches(dataset))
    # Infinite by default; the first batches do not depend on how many
    # are taken.
    endless = samplers.pk_batches(LABELS, 2, 3, seed=7)
    np.testing.assert_array_equal(_batches(endless.take(20)), first)


def test_npair_batches_hold_one_pair_per_distinct_class():
    for batch in _batches(samplers.npair_batches(LABELS, 10, seed=4, num_batches=30)):
        anchors, positives = batch[0::2], batch[1::2]
        assert np.all(anchors != positives)
        np.testing.assert_array_equal(LABELS[anchors], LABELS[positives])
        assert len(set(LABELS[anchors].tolist())) == 5
        assert 11 not in LABELS[batch]  # the class with a single image


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"needs 6 classes with at least 4 images"
                                         r" each, but only 5 of the 8 classes"):
        samplers.pk_batches(LABELS, 6, 4, seed=0)
    with pytest.raises(ValueError, match="at least 8 images.*largest class: 7"):
        samplers.pk_batches(LABELS, 1, 8, seed=0)
    with pytest.raises(ValueError,
                       match="npair_batches needs 4 classes with at least 2"):
        samplers.npair_batches(np.array([0, 0, 1, 1, 2, 2, 3]), 8, seed=0)
    with pytest.raises(ValueError, match="batch_size must be even"):
        samplers.npair_batches(LABELS, 7)
    with pytest.raises(ValueError, match=r"labels must be a 1-D integer array"):
        samplers.pk_batches(LABELS.astype(float), 2, 2)
    with pytest.raises(ValueError, match=r"labels must be a 1-D integer array"):
        samplers.pk_batches(LABELS.reshape(-1, 1), 2, 2)
    with pytest.raises(ValueError, match="images_per_class must be an integer >= 1"):
        samplers.pk_batches(LABELS, 2, 0)
    with pytest.raises(ValueError, match="seed must be"):
        samplers.pk_batches(LABELS, 2, 2, seed=-1)
