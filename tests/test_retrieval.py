"""tfcaf.metrics.retrieval against brute-force numpy and sklearn."""

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score

from tfcaf.metrics import nmi
from tfcaf.metrics import normalized_mutual_information
from tfcaf.metrics import recall_at_k
from tfcaf.metrics.retrieval import neighbour_hits


def numpy_recall_at_k(embeddings, labels, ks):
    """Full N x N distance matrix, query excluded, stable sort."""
    diff = embeddings[:, None, :] - embeddings[None, :, :]
    dist = np.sqrt(np.sum(diff ** 2, axis=-1))
    np.fill_diagonal(dist, np.inf)
    nearest = np.argsort(dist, axis=1, kind="stable")
    same = labels[nearest] == labels[:, None]
    return {k: float(np.mean(same[:, :k].any(axis=1))) for k in ks}


@pytest.mark.parametrize("chunk_size", [None, 1, 7, 400])
def test_recall_matches_brute_force_on_random_data(chunk_size):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 8))
    y = rng.integers(0, 20, size=400)
    ks = (1, 2, 4, 8, 13)
    got = recall_at_k(x, y, ks, chunk_size=chunk_size)
    assert got == numpy_recall_at_k(x, y, ks)
    assert 0.0 < got[1] < got[13] < 1.0


def test_per_query_nearest_neighbour_hits_match_brute_force():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(150, 6))
    y = rng.integers(0, 8, size=150)
    dist = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    np.fill_diagonal(dist, np.inf)
    expected = y[dist.argmin(axis=1)] == y
    got = neighbour_hits(x, y, chunk_size=13)
    assert got.shape == (150, 1)
    np.testing.assert_array_equal(got[:, 0], expected)
    assert 0 < expected.sum() < 150


def test_recall_matches_brute_force_on_clustered_float32():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 10, size=300)
    centres = rng.normal(size=(10, 16)) * 2.0
    x = (centres[y] + rng.normal(size=(300, 16))).astype(np.float32)
    got = recall_at_k(x, y)
    assert got == numpy_recall_at_k(x.astype(np.float64), y, (1, 2, 4, 8))
    assert got[1] > 0.9


def test_recall_excludes_the_query_itself():
    x = np.array([[0.0], [0.1], [5.0], [5.3], [5.3]])
    y = np.array([0, 1, 0, 1, 1])
    # Items 3 and 4 coincide: each finds the other (not itself) first.
    # Item 0 hits at K = 2 (item 2), item 1 at K = 3 (item 3 or 4), item 2
    # at K = 4 (item 0). Counting the query itself would give 1 everywhere.
    got = recall_at_k(x, y, ks=(1, 2, 3, 4))
    assert got == {1: 2 / 5, 2: 3 / 5, 3: 4 / 5, 4: 1.0}


def test_recall_with_many_duplicates_matches_brute_force():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 3))
    x[5:17] = x[5]  # 12 coincident items, more than K + 1 = 9
    y = rng.integers(0, 4, size=40)
    assert recall_at_k(x, y, chunk_size=6) == numpy_recall_at_k(x, y, (1, 2, 4, 8))


def test_recall_argument_errors():
    x = np.zeros((5, 2))
    with pytest.raises(ValueError, match="only 4 other items"):
        recall_at_k(x, np.arange(5), ks=(1, 5))
    with pytest.raises(ValueError, match="ks must be positive integers"):
        recall_at_k(x, np.arange(5), ks=(0,))
    with pytest.raises(ValueError, match=r"labels must have shape \(N,\) = \(5,\)"):
        recall_at_k(x, np.arange(4))
    with pytest.raises(ValueError, match=r"embeddings must be a float array \(N, D\)"):
        recall_at_k(np.zeros(5), np.arange(5))
    with pytest.raises(ValueError, match="chunk_size"):
        recall_at_k(x, np.arange(5), ks=(1,), chunk_size=0)


@pytest.mark.parametrize("seed", range(4))
def test_nmi_formula_matches_sklearn_geometric(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 500))
    labels = rng.choice([-3, 0, 7, 8, 100], size=n)
    clusters = np.where(rng.random(n) < 0.6, labels, rng.integers(0, 6, size=n))
    want = normalized_mutual_info_score(labels, clusters, average_method="geometric")
    got = normalized_mutual_information(labels, clusters)
    assert got == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("labels, clusters", [
    ([1, 1, 1], [4, 4, 4]),           # one group each: 1 by convention
    ([0, 1, 2, 3], [0, 0, 0, 0]),     # one cluster: no information
    ([0, 0, 1, 1], [5, 5, 9, 9]),     # same partition, other names
    ([0, 0, 1, 1], [0, 1, 0, 1]),     # independent
])
def test_nmi_formula_limits_match_sklearn(labels, clusters):
    want = normalized_mutual_info_score(labels, clusters, average_method="geometric")
    got = normalized_mutual_information(labels, clusters)
    assert got == pytest.approx(want, abs=1e-12)


def _sklearn_nmi(x, labels, n_init, seed):
    clusters = KMeans(n_clusters=len(np.unique(labels)), n_init=n_init,
                      random_state=seed).fit_predict(x)
    return normalized_mutual_info_score(labels, clusters, average_method="geometric")


@pytest.mark.parametrize("seed", [3, 11])
def test_nmi_is_sklearn_kmeans_with_ten_initialisations(seed):
    # 20 overlapping classes: restarts matter, so one K-means run differs.
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 20, size=600)
    x = rng.normal(size=(20, 8))[labels] * 1.2 + rng.normal(size=(600, 8))
    got = nmi(x, labels, seed=seed)
    assert got == pytest.approx(_sklearn_nmi(x, labels, 10, seed), rel=1e-12)
    assert got != pytest.approx(_sklearn_nmi(x, labels, 1, seed), rel=1e-6)
    assert nmi(x, labels, seed=seed, n_init=1) == pytest.approx(_sklearn_nmi(x, labels, 1, seed),
                                                               rel=1e-12)
    assert 0.3 < got < 1.0 and nmi(x, labels, seed=seed) == got
