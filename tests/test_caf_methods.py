"""The method registry: one table that the engine dispatches through."""

import dataclasses
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcaf.caf import METHODS, Explainer, Method, SolverConfig, method
from tfcaf.caf import methods as methods_module
from tfcaf.errors import TfcafError

H = W = 6
CHANNELS, CLASSES = 3, 4


def _model(head, seed=0, name="logits"):
    """Input (6, 6, 3) -> 1x1 conv 'features' -> GAP -> [tanh Dense ->]
    Dense(4) called `name`."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((H, W, CHANNELS))
    x = keras.layers.Conv2D(CHANNELS, 1, name="features")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    if head == "hidden":
        x = keras.layers.Dense(5, activation="tanh")(x)
    return keras.Model(inputs, keras.layers.Dense(CLASSES, name=name)(x))


def _images(n, seed=0):
    return np.random.default_rng(seed).normal(size=(n, H, W, CHANNELS)).astype("float32")


def test_registry_lists_every_method_once_in_order():
    assert tuple(METHODS) == ("l2caf", "l2caf_specific", "cam", "gradcam", "gradcampp",
                              "xgradcam", "hirescam", "layercam", "eigencam", "scorecam",
                              "ablationcam", "saliency", "integrated_gradients", "occlusion",
                              "smoothgrad", "rise")
    assert all(METHODS[name].name == name for name in METHODS)
    assert method("gradcampp") is METHODS["gradcampp"]
    with pytest.raises(TfcafError,
                       match="'lime'.*l2caf, l2caf_specific, cam, gradcam, gradcampp, xgradcam"):
        method("lime")


@pytest.mark.parametrize("head,name,unsupported", [
    ("gap", "logits", {}),
    ("hidden", "logits", {"cam": "Dense\\(GlobalAveragePooling2D\\) head after layer"}),
    ("gap", "embedding", {"cam": "embedding", "l2caf_specific": "embedding",
                          "scorecam": "embedding", "ablationcam": "embedding",
                          "occlusion": "embedding", "rise": "embedding"}),
])
def test_every_supported_method_runs_and_others_say_why(head, name, unsupported):
    model = _model(head, name=name)
    explainer = Explainer(model)
    images = _images(2)
    for method_name, spec in METHODS.items():
        reason = explainer.supports(method_name)
        if method_name in unsupported:
            assert reason is not None and "\n" not in reason
            assert re.search(unsupported[method_name], reason), reason
            with pytest.raises(TfcafError, match=method_name):
                explainer.explain(images, method_name)
            continue
        assert reason is None, (method_name, reason)
        options = {"max_iterations": 20} if spec.iterative else {}
        result = explainer.explain(images, method_name, **options)
        assert result.heatmaps.shape == (2, H, W) and result.maps.shape == (2, H, W)
        assert (result.iterations is not None) == spec.iterative
        takes_targets = spec.uses_targets and name == "logits"
        assert explainer.takes_targets(method_name) == takes_targets
        assert (result.targets is not None) == takes_targets
        if not takes_targets:
            with pytest.raises(TfcafError, match="takes no targets"):
                explainer.explain(images, method_name, targets=[0, 1])
    assert explainer.supports("lime").startswith("unknown method 'lime'")


def test_public_pieces_compose_to_explain():
    """forward + solve / raw_maps, inside one tf.function, give explain's maps."""
    model = _model("gap", seed=1)
    explainer = Explainer(model)
    images = _images(3, seed=1)
    config = SolverConfig(max_iterations=30, tolerance=0.0)
    targets = tf.constant([0, 3, 1])

    @tf.function
    def graph(images):
        feature_maps, _ = explainer.forward(images)
        return (explainer.solve(feature_maps, None, config).maps,
                explainer.solve(feature_maps, targets, config).maps,
                explainer.raw_maps(feature_maps, "gradcampp", targets))

    oblivious, specific, gradcampp = graph(tf.constant(images))
    np.testing.assert_allclose(
        oblivious, explainer.explain(images, max_iterations=30, tolerance=0.0).maps, atol=1e-5)
    np.testing.assert_allclose(
        specific, explainer.explain(images, "l2caf_specific", targets.numpy(),
                                    max_iterations=30, tolerance=0.0).maps, atol=1e-5)
    np.testing.assert_allclose(
        gradcampp, explainer.explain(images, "gradcampp", targets.numpy()).maps, atol=1e-6)
    with pytest.raises(TfcafError, match="iterative"):
        explainer.raw_maps(explainer.forward(images)[0], "l2caf")


def test_a_new_method_is_one_function_and_one_entry(monkeypatch):
    """Registering a method makes explain, supports and takes_targets serve
    it with no other change: here 'activation', the channel sum of A."""
    def channel_sum(call):
        return tf.reduce_sum(call.feature_maps, axis=-1)

    entry = Method("activation", targets=("output",), iterative=False,
                   needs_dense_gap_head=False, compute=channel_sum,
                   description="channel sum of the feature map")
    monkeypatch.setitem(methods_module.METHODS, "activation", entry)
    model = _model("hidden", seed=2)
    images = _images(2, seed=2)
    explainer = Explainer(model)
    assert explainer.supports("activation") is None
    result = explainer.explain(images, "activation")
    features = keras.Model(model.input, model.get_layer("features").output)
    np.testing.assert_allclose(result.maps, features(images).numpy().sum(-1), rtol=1e-5,
                               atol=1e-6)
    assert result.targets is None and result.iterations is None


def test_method_entries_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        METHODS["cam"].iterative = True


def test_iterative_methods_return_one_loss_per_snapshot():
    explainer = Explainer(_model("gap", seed=3))
    images = _images(2, seed=3)
    options = dict(max_iterations=20, tolerance=0.0, snapshot_every=5)
    for name, targets, lead in [("l2caf", None, (2,)),
                                ("l2caf_specific", [[0, 1], [2, 3]], (2, 2))]:
        result = explainer.explain(images, name, targets, **options)
        assert result.snapshots.shape == lead + (4, H, W)
        assert result.snapshot_losses.shape == lead + (4,)
        assert np.isfinite(result.snapshot_losses).all()
    assert explainer.explain(images, "l2caf", max_iterations=20).snapshot_losses is None
    assert explainer.explain(images, "gradcam").snapshot_losses is None
