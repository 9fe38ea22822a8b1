"""ACoL head, loss and model (docs/method.md §3)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcaf.models import (ACoLHead, ACoLLoss, acol_localization_map,
                          build_model, erase_features, training_loss)


def _minmax(maps):
    """Reference per-image min-max normalisation of (B, h, w) maps."""
    low = maps.min(axis=(1, 2), keepdims=True)
    high = maps.max(axis=(1, 2), keepdims=True)
    return (maps - low) / (high - low)


def _cross_entropy(logits, labels):
    """Reference mean sparse cross-entropy with a stable log-softmax."""
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -np.mean(log_softmax[np.arange(len(labels)), labels])


def test_erasing_zeroes_exactly_the_positions_at_or_above_delta():
    k = np.arange(9, dtype="float32").reshape(3, 3)
    # Image 0 normalises to k / 8; image 1 (10 + 2k) to the same values.
    class_map = np.stack([k, 10 + 2 * k])
    features = np.random.default_rng(0).uniform(1, 2, (2, 3, 3, 4)).astype("float32")
    # delta 0.5: k / 8 >= 0.5 <=> k >= 4, the equality k = 4 included.
    erased = erase_features(features, class_map, 0.5).numpy()
    keep = (k < 4).astype("float32")
    np.testing.assert_array_equal(erased, features * keep[None, :, :, None])
    # delta 0.6: k >= 4.8, i.e. k in {5, 6, 7, 8}.
    erased = erase_features(features, class_map, 0.6).numpy()
    keep = (k < 5).astype("float32")
    np.testing.assert_array_equal(erased, features * keep[None, :, :, None])


def _head_and_features(num_classes=3, seed=0):
    keras.utils.set_random_seed(seed)
    head = ACoLHead(num_classes, delta=0.6, filters=6)
    features = np.random.default_rng(seed).uniform(0, 1, (4, 5, 5, 7)).astype("float32")
    head(features)
    return head, features


def _run(convs, x):
    for conv in convs:
        x = conv(x)
    return x.numpy()


@pytest.mark.parametrize("labels", [None, np.array([2, 0, 1, 1])])
def test_branch_b_sees_features_erased_by_branch_a_map(labels):
    head, features = _head_and_features()
    maps_a, maps_b, classes = head.class_maps(features, labels)
    maps_a = maps_a.numpy()
    np.testing.assert_allclose(maps_a, _run(head.branch_a, features), rtol=1e-6)
    expected_classes = maps_a.mean(axis=(1, 2)).argmax(-1) if labels is None else labels
    np.testing.assert_array_equal(classes.numpy(), expected_classes)
    chosen = maps_a[np.arange(4), :, :, expected_classes]
    keep = (_minmax(chosen) < 0.6).astype("float32")
    assert 0 < keep.sum() < keep.size  # something erased, something kept
    reference_b = _run(head.branch_b, features * keep[..., None])
    np.testing.assert_allclose(maps_b.numpy(), reference_b, rtol=1e-5, atol=1e-6)
    # The layer's output is branch A's logits: the spatial mean of its maps.
    np.testing.assert_allclose(head(features).numpy(), maps_a.mean(axis=(1, 2)),
                               rtol=1e-5, atol=1e-6)


def test_fused_map_is_elementwise_max_of_normalised_maps():
    head, features = _head_and_features()
    labels = np.array([1, 1, 0, 2])
    maps_a, maps_b, _ = (m.numpy() for m in head.class_maps(features, labels))
    index = np.arange(4)
    expected = np.maximum(_minmax(maps_a[index, :, :, labels]),
                          _minmax(maps_b[index, :, :, labels]))
    fused = head.localization_map(features, labels).numpy()
    np.testing.assert_allclose(fused, expected, rtol=1e-5, atol=1e-6)


def test_both_branch_losses_enter_the_gradient():
    head, features = _head_and_features()
    labels = np.array([0, 1, 2, 1])
    with tf.GradientTape(persistent=True) as tape:
        branches = head.branch_logits(features, labels)
        total = ACoLLoss()(labels, branches)
        ce = [tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels, branches[:, i])) for i in (0, 1)]
    np.testing.assert_allclose(
        float(total), _cross_entropy(branches[:, 0], labels) +
        _cross_entropy(branches[:, 1], labels), rtol=1e-5)
    weights = head.trainable_weights
    grad_total = tape.gradient(total, weights)
    grad_a, grad_b = (tape.gradient(c, weights, unconnected_gradients="zero")
                      for c in ce)
    for name, g, ga, gb in zip([w.path for w in weights], grad_total, grad_a, grad_b):
        np.testing.assert_allclose(g.numpy(), ga.numpy() + gb.numpy(), rtol=1e-4,
                                   atol=1e-7, err_msg=name)
    a_kernel, b_kernel = (head.branch_a[-1].kernel, head.branch_b[-1].kernel)
    index = {id(w): i for i, w in enumerate(weights)}
    # CE(A) moves branch A only (the erasing mask has no gradient), CE(B)
    # moves branch B only, and both reach the total.
    assert np.abs(grad_a[index[id(a_kernel)]].numpy()).max() > 0
    assert np.abs(grad_b[index[id(b_kernel)]].numpy()).max() > 0
    assert np.abs(grad_a[index[id(b_kernel)]].numpy()).max() == 0
    assert np.abs(grad_b[index[id(a_kernel)]].numpy()).max() == 0


def _tiny_acol(seed=0):
    keras.utils.set_random_seed(seed)
    return build_model("tiny_resnet", "acol", num_classes=3, image_size=16,
                       backbone_options={"filters": (4, 8)}, acol_filters=8)


def test_fit_erases_with_ground_truth_and_evaluate_with_prediction():
    model = _tiny_acol()
    x = np.random.default_rng(1).uniform(0, 255, (6, 16, 16, 3)).astype("float32")
    predicted = model.predict(x, verbose=0).argmax(-1)
    labels = (predicted + 1) % 3  # never the predicted class
    def acol_ce(branches, y):
        """{"loss": CE(A) + CE(B), "loss_a": CE(A), "loss_b": CE(B)} by hand."""
        branches = branches.numpy()
        a, b = _cross_entropy(branches[:, 0], y), _cross_entropy(branches[:, 1], y)
        return {"loss": a + b, "loss_a": a, "loss_b": b}

    def check(logs, expected):
        for name in ("loss", "loss_a", "loss_b"):
            np.testing.assert_allclose(logs[name], expected[name], rtol=1e-5, err_msg=name)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    eval_expected = acol_ce(model.branch_logits(x, None, training=False), labels)
    check(model.evaluate(x, labels, batch_size=6, verbose=0, return_dict=True),
          eval_expected)
    # Training-mode calls use batch statistics (and update the moving ones,
    # hence after evaluate).
    train_expected = acol_ce(model.branch_logits(x, labels, training=True), labels)
    train_predicted = acol_ce(model.branch_logits(x, None, training=True), labels)
    assert abs(train_expected["loss"] - train_predicted["loss"]) > 1e-4  # erasing class matters
    check(model.train_on_batch(x, labels, return_dict=True), train_expected)


def test_localization_map_of_model():
    model = _tiny_acol()
    x = np.random.default_rng(2).uniform(0, 255, (3, 16, 16, 3)).astype("float32")
    fused = acol_localization_map(model, x).numpy()
    assert fused.shape == (3, 4, 4)  # 16 px, total stride 4
    features = model.get_layer("backbone")(x)
    maps_a, maps_b, classes = (m.numpy() for m in model.get_layer("acol").class_maps(features))
    np.testing.assert_array_equal(classes, model.predict(x, verbose=0).argmax(-1))
    index = np.arange(3)
    expected = np.maximum(_minmax(maps_a[index, :, :, classes]),
                          _minmax(maps_b[index, :, :, classes]))
    np.testing.assert_allclose(fused, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="not an ACoLModel"):
        acol_localization_map(keras.Sequential([keras.Input((2,))], name="plain"), x)


def test_cam_of_an_acol_model_is_its_fused_map_in_explain_and_evaluation():
    import tfcaf
    from tfcaf.evaluation import KerasAdapter
    model = _tiny_acol()
    x = np.random.default_rng(3).uniform(0, 255, (3, 16, 16, 3)).astype("float32")
    labels = np.array([0, 2, 1], np.int32)
    expected = acol_localization_map(model, x, labels).numpy()
    result = tfcaf.explain(model, x, method="cam", targets=labels)
    np.testing.assert_allclose(result.maps, expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(result.targets, labels)
    adapter = KerasAdapter(model)
    assert adapter.supports("cam") is None
    assert adapter.method_settings("cam") == {
        "map": "the model's own class_activation_maps (docs/method.md §3)"}
    np.testing.assert_allclose(adapter.maps(x, labels, "cam")[0], expected, rtol=1e-6,
                               atol=1e-7)
    # Another head with no Dense(GAP) after the split still has no CAM.
    plain = build_model("tiny_resnet", "embedding", image_size=16, embedding_dim=4,
                        backbone_options={"filters": (4, 8)})
    assert "needs class logits" in tfcaf.caf.Explainer(plain).supports("cam")


def test_acol_rejects_wrong_loss_and_shapes():
    model = _tiny_acol()
    with pytest.raises(ValueError, match="trains with ACoLLoss"):
        model.compile(loss="sparse_categorical_crossentropy")
    assert isinstance(training_loss("acol"), ACoLLoss)
    with pytest.raises(ValueError, match=r"\(B, 2, K\)"):
        ACoLLoss()(np.zeros(2), np.zeros((2, 3), "float32"))
    with pytest.raises(ValueError, match="delta must be in"):
        ACoLHead(3, delta=2.0)
    with pytest.raises(ValueError, match="'acol_h'.*4-D"):
        ACoLHead(3, name="acol_h")(np.zeros((2, 5), "float32"))
