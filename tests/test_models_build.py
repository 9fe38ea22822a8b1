"""Models from `build_model`: the L2-CAF split, `.keras` and SavedModel round
trips, and training of every head on toy problems."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcaf.caf.split import split_model
from tfcaf.models import ACoLModel, build_model, training_loss

TINY = dict(backbone="tiny_resnet", image_size=32, acol_filters=8,
            backbone_options={"filters": (8, 16, 16)})
HEADS = [("classifier", {}), ("adl", {}), ("acol", {}),
         ("embedding", {"normalize_embedding": True}),
         ("embedding", {"normalize_embedding": False})]
HEAD_IDS = ["classifier", "adl", "acol", "embedding_l2", "embedding_raw"]


def _tiny(head, seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    return build_model(head=head, num_classes=3, embedding_dim=8, seed=seed,
                       **{**TINY, **kwargs})


def _images(n=4, size=32, seed=1):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


def _check_split(model, x):
    split = split_model(model)
    assert len(split.features(x).shape) == 4
    np.testing.assert_allclose(split.head(split.features(x)).numpy(),
                               model(x).numpy(), rtol=1e-5, atol=1e-5)
    return split


@pytest.mark.parametrize("head,kwargs", HEADS, ids=HEAD_IDS)
def test_tiny_models_interface_and_split(head, kwargs):
    model = _tiny(head, **kwargs)
    x = _images()
    assert [tuple(t.shape) for t in model.inputs] == [(None, 32, 32, 3)]
    out = model(x).numpy()
    if head == "embedding":
        assert out.shape == (4, 8) and model.layers[-1].name == "embedding"
        norms = np.linalg.norm(out, axis=1)
        assert np.allclose(norms, 1, atol=1e-5) == kwargs["normalize_embedding"]
    else:
        assert out.shape == (4, 3)
        assert not np.allclose(out.sum(axis=1), 1)  # logits, not probabilities
    split = _check_split(model, x)
    expected = "stage3_out_adl" if head == "adl" else "stage3_out"
    assert split.layer == expected


BIG = [(b, h) for b in ("googlenet", "vgg16_gap")
       for h in ("classifier", "adl", "acol", "embedding")]


@pytest.mark.parametrize("backbone,head", BIG)
def test_large_backbones_split(backbone, head):
    model = build_model(backbone, head, num_classes=3, image_size=32, acol_filters=8)
    _check_split(model, _images(n=2))


@pytest.mark.slow
@pytest.mark.parametrize("head", ["classifier", "adl", "acol", "embedding"])
def test_resnet50_split(head):
    model = build_model("resnet50", head, num_classes=3, image_size=32, acol_filters=8)
    _check_split(model, _images(n=2))


def _round_trips(model, tmp_path, x):
    expected = model(x).numpy()
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded(x).numpy(), expected)
    export = str(tmp_path / "saved_model")
    model.export(export, verbose=False)
    reloaded = tf.saved_model.load(export)  # kept alive: it owns the variables
    served = reloaded.serve(tf.constant(x))
    np.testing.assert_allclose(served.numpy(), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("head", ["classifier", "adl", "acol", "embedding"])
def test_tiny_models_round_trip(head, tmp_path):
    _round_trips(_tiny(head), tmp_path, _images())


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["resnet50", "googlenet", "vgg16_gap"])
@pytest.mark.parametrize("head", ["classifier", "adl", "acol", "embedding"])
def test_large_models_round_trip(backbone, head, tmp_path):
    model = build_model(backbone, head, num_classes=3, image_size=32, acol_filters=8)
    _round_trips(model, tmp_path, _images(n=2))


def _toy_problem(n=48, classes=3, seed=0):
    """Noisy images with a bright 12x12 square in a corner set by the class."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    x = rng.uniform(0, 80, (n, 32, 32, 3)).astype("float32")
    corners = [(0, 0), (0, 20), (20, 0)]
    for image, label in zip(x, labels):
        r, c = corners[label]
        image[r:r + 12, c:c + 12] = 255.0
    return x, labels


@pytest.mark.parametrize("head", ["classifier", "adl", "acol"])
def test_classification_heads_learn_toy_problem(head):
    model = _tiny(head)
    x, y = _toy_problem()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=training_loss(head),
                  metrics=["accuracy"])
    before = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    history = model.fit(x, y, batch_size=16, epochs=8, shuffle=False, verbose=0)
    after = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    assert np.all(np.isfinite(history.history["loss"]))
    assert after["loss"] < 0.5 * before["loss"]
    assert after["accuracy"] > 0.9
    assert isinstance(model, ACoLModel) == (head == "acol")


def test_embedding_head_learns_toy_problem():
    model = _tiny("embedding")
    x, labels = _toy_problem()
    # The metric learning losses live in tfcaf.losses; a regression of the
    # normalized embedding onto one unit vector per class is learnable too.
    prototypes = np.eye(8, dtype="float32")[:3]
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    losses = model.fit(x, prototypes[labels], batch_size=16, epochs=8, shuffle=False,
                       verbose=0).history["loss"]
    assert losses[-1] < 0.1 * losses[0]
    # Batch statistics: 24 steps leave BatchNorm's moving averages (momentum
    # 0.99) far from converged, which inference mode would measure instead.
    nearest = np.argmax(model(x, training=True).numpy() @ prototypes.T, axis=1)
    np.testing.assert_array_equal(nearest, labels)


def test_training_loss_by_head():
    for head in ("classifier", "adl"):
        loss = training_loss(head)
        assert isinstance(loss, keras.losses.SparseCategoricalCrossentropy)
        logits = np.array([[2.0, 0.0, -1.0]], "float32")
        expected = -np.log(np.exp(2.0) / np.exp(logits).sum())
        np.testing.assert_allclose(float(loss(np.array([0]), logits)), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="metric learning loss"):
        training_loss("embedding")
    with pytest.raises(ValueError, match="unknown head"):
        training_loss("cam")
