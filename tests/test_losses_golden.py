"""Parity of tfcaf.losses with tensorflow-addons 0.23, from golden files.

tests/data/tfa_golden.npz holds seeded inputs and tfa's loss values and
gradients, written by tools/make_tfa_golden.py under TF 2.15 (see that file
for the layout). These tests only read it.
"""

import json
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from tfcaf import losses

GOLDEN = pathlib.Path(__file__).parent / "data" / "tfa_golden.npz"

# Same callables as tools/make_tfa_golden.py.
CALLABLE_METRICS = {
    "callable-matmul": lambda x: tf.linalg.matmul(x, x, transpose_b=True),
    "callable-manhattan": lambda x: tf.reduce_sum(
        tf.abs(x[:, None, :] - x[None, :, :]), axis=-1),
}


def _load():
    with np.load(GOLDEN) as golden:
        meta = json.loads(str(golden["meta"]))
        arrays = {key: golden[key] for key in golden.files if key != "meta"}
    cases = {}
    for case in meta:
        prefix = case["name"] + "."
        case["data"] = {key[len(prefix):]: value for key, value in arrays.items()
                        if key.startswith(prefix)}
        cases[case["name"]] = case
    return cases


CASES = _load()


def _ids(kind):
    return [name for name, case in CASES.items() if case["kind"] == kind]


def _tolerance(case):
    # tfa runs the N-pair softmax in half precision, tfcaf in float32.
    if case["dtype"] == "float32":
        return dict(rtol=1e-5, atol=1e-6)
    return dict(rtol=1e-2, atol=1e-3)


def _loss_and_grad(fn, x, dtype):
    x = tf.cast(tf.constant(x), dtype)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = fn(x)
    grad = tape.gradient(loss, x)
    assert loss.dtype == dtype
    return (tf.cast(loss, tf.float64).numpy(),
            tf.cast(grad, tf.float64).numpy())


def _triplet_fn(case):
    metric = CALLABLE_METRICS.get(case["metric"], case["metric"])
    return lambda x: losses.triplet_semihard_loss(
        case["data"]["labels"], x, margin=case["margin"], distance_metric=metric)


@pytest.mark.parametrize("name", _ids("triplet"))
def test_triplet_semihard_matches_tfa(name):
    case = CASES[name]
    data = case["data"]
    loss, grad = _loss_and_grad(_triplet_fn(case), data["embeddings"], case["dtype"])
    if np.isnan(data["loss"]):
        # Documented difference: no positive pair gives 0, tfa gives NaN.
        assert len(set(data["labels"].tolist())) == len(data["labels"])
        assert loss == 0.0
        np.testing.assert_array_equal(grad, 0.0)
        return
    tol = _tolerance(case)
    np.testing.assert_allclose(loss, data["loss"], **tol)
    np.testing.assert_allclose(grad, data["grad_embeddings"], **tol)


@pytest.mark.parametrize("name", _ids("npairs"))
def test_npairs_matches_tfa(name):
    case = CASES[name]
    data, tol = case["data"], _tolerance(case)
    loss, grad = _loss_and_grad(
        lambda s: losses.npairs_loss(data["labels"], s),
        data["similarity"], case["dtype"])
    np.testing.assert_allclose(loss, data["loss"], **tol)
    np.testing.assert_allclose(grad, data["grad_similarity"], **tol)
    # The embedding wrapper forms the similarity matrix itself.
    pair_labels = np.repeat(data["labels"], 2)
    loss, grad = _loss_and_grad(
        lambda x: losses.npairs_embedding_loss(pair_labels, x),
        data["embeddings"], case["dtype"])
    np.testing.assert_allclose(loss, data["loss"], **tol)
    np.testing.assert_allclose(grad, data["grad_embeddings"], **tol)


@pytest.mark.parametrize("name", _ids("npairs_multilabel"))
@pytest.mark.parametrize("sparse", [False, True])
def test_npairs_multilabel_matches_tfa(name, sparse):
    case = CASES[name]
    data, tol = case["data"], _tolerance(case)
    labels = data["labels"]
    if sparse:
        labels = tf.sparse.from_dense(labels)
    loss, grad = _loss_and_grad(
        lambda x: losses.npairs_multilabel_loss(
            labels, tf.matmul(x[0::2], x[1::2], transpose_b=True)),
        data["embeddings"], case["dtype"])
    np.testing.assert_allclose(loss, data["loss"], **tol)
    np.testing.assert_allclose(grad, data["grad_embeddings"], **tol)
    loss, grad = _loss_and_grad(
        lambda s: losses.npairs_multilabel_loss(labels, s),
        data["similarity"], case["dtype"])
    np.testing.assert_allclose(grad, data["grad_similarity"], **tol)


@pytest.mark.parametrize("name", ["triplet_00", "triplet_17", "triplet_40"])
def test_keras_triplet_loss_matches_tfa(name):
    case = CASES[name]
    data = case["data"]
    loss_obj = losses.TripletSemiHardLoss(
        margin=case["margin"], distance_metric=case["metric"])
    loss = loss_obj(data["labels"], data["embeddings"])
    np.testing.assert_allclose(loss.numpy(), data["loss"], **_tolerance(case))


def test_keras_npairs_embedding_loss_matches_tfa():
    case = CASES[_ids("npairs")[3]]
    data = case["data"]
    loss = losses.NpairsEmbeddingLoss()(np.repeat(data["labels"], 2),
                                        data["embeddings"])
    np.testing.assert_allclose(loss.numpy(), data["loss"], **_tolerance(case))


def test_golden_file_covers_the_promised_cases():
    triplets = [CASES[name] for name in _ids("triplet")]
    for metric in ("L2", "squared-L2", "angular", *CALLABLE_METRICS):
        normalised = {c["normalised"] for c in triplets if c["metric"] == metric}
        assert normalised == {True, False}, metric
    layouts = {c["layout"] for c in triplets}
    assert {"singletons", "all-same", "all-distinct", "duplicates"} <= layouts
    assert len({c["batch"] for c in triplets}) >= 5
    assert len({c["dim"] for c in triplets}) >= 5
    assert len({c["margin"] for c in triplets}) >= 4
    assert {c["dtype"] for c in triplets} == {"float32", "float16", "bfloat16"}
    npairs_layouts = {CASES[name]["layout"] for name in _ids("npairs")}
    assert {"distinct", "repeated", "all-same"} <= npairs_layouts
    assert any(np.isnan(c["data"]["loss"]) for c in triplets)
