"""Faithfulness metrics against brute-force loops (one image, one step, one
pixel at a time) on tiny models, and the substrate of each preprocessing."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcaf.metrics import faithfulness as fm
from tfcaf.models import ImagePreprocessing
from tfcaf.models.preprocessing import preprocess_pixels

H, W = 6, 5


def _tiny_model(outputs, seed, mode="caffe", normalize=False):
    keras.utils.set_random_seed(seed)
    images = keras.Input((H, W, 3))
    x = ImagePreprocessing(mode, name="preprocessing")(images)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(outputs, name="embedding" if normalize else "logits")(x)
    if normalize:
        x = keras.layers.UnitNormalization()(x)
    return keras.Model(images, x)


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(0, 255, (n, H, W, 3)).astype(np.float32),
            rng.random((n, H, W)), rng.integers(0, 3, n))


def _score(model, image, target, reference):
    out = model(image[None]).numpy()[0].astype(np.float64)
    if reference is None:
        p = np.exp(out - out.max())
        return p[target] / p.sum()
    norm = np.linalg.norm(out) * np.linalg.norm(reference)
    return 0.0 if norm == 0 else out @ reference / norm  # a zero embedding scores 0


def _brute_curve(model, start, end, heatmap, step, target, reference):
    order = sorted(range(H * W), key=lambda p: (-heatmap.flat[p], p))
    scores, image, done = [_score(model, start, target, reference)], start.copy(), 0
    while done < H * W:
        for p in order[done:done + step]:
            image[p // W, p % W] = end[p // W, p % W]
        done += step
        scores.append(_score(model, image, target, reference))
    area = sum((scores[i] + scores[i + 1]) / 2 for i in range(len(scores) - 1))
    return np.array(scores), area / (len(scores) - 1)


def _brute_blur(image, substrate):
    # eclique/RISE's own gkern(11, 5), as its golden file stores it.
    from golden_files import load
    kernel = load("rise")[1]["causal.kernel"][0, 0].astype(np.float64)
    padded = np.broadcast_to(substrate, (H + 10, W + 10, 3)).copy()
    padded[5:5 + H, 5:5 + W] = image
    out = np.zeros_like(image, np.float64)
    for y in range(H):
        for x in range(W):
            for c in range(3):
                out[y, x, c] = (padded[y:y + 11, x:x + 11, c] * kernel).sum()
    return out


@pytest.mark.parametrize("mode", ["caffe", "torch", "tf", "unit", "none", "clip"])
def test_substrate_is_what_preprocessing_maps_to_zero(mode):
    colour = fm.substrate_colour(mode)
    np.testing.assert_allclose(preprocess_pixels(tf.constant(colour[None]), mode).numpy(), 0,
                               atol=1e-4)


@pytest.mark.parametrize("embedding", [False, True])
def test_deletion_insertion_equal_brute_force(embedding):
    model = _tiny_model(4 if embedding else 3, seed=1, normalize=embedding)
    images, heatmaps, targets = _data(3)
    heatmaps[1] = np.round(heatmaps[1] * 3) / 3  # ties, broken in row-major order
    substrate = fm.model_substrate(model)
    np.testing.assert_allclose(substrate, [123.68, 116.779, 103.939])
    predict = lambda x: model(x)
    got = fm.deletion_insertion(predict, images, heatmaps, targets, embedding=embedding,
                                substrate=substrate, step=4, batch_size=7)
    blurred = fm.blurred(images, substrate)
    for i in range(3):
        np.testing.assert_allclose(blurred[i], _brute_blur(images[i], substrate), rtol=1e-4,
                                   atol=1e-3)
        reference = model(images[i:i + 1]).numpy()[0].astype(np.float64) if embedding else None
        for name, start, end in (("deletion", images[i], np.broadcast_to(substrate, (H, W, 3))),
                                 ("insertion", blurred[i], images[i])):
            curve, area = _brute_curve(model, start.copy(), end, heatmaps[i], 4, targets[i],
                                       reference)
            assert got[f"{name}_curve"].shape == (3, 9)  # ceil(30 / 4) + 1 steps
            np.testing.assert_allclose(got[f"{name}_curve"][i], curve, rtol=1e-4, atol=1e-6)
            assert got[name][i] == pytest.approx(area, rel=1e-4)
    if embedding:
        np.testing.assert_allclose(got["deletion_curve"][:, 0], 1.0, atol=1e-5)


@pytest.mark.parametrize("embedding", [False, True])
def test_average_drop_and_increase_equal_brute_force(embedding):
    model = _tiny_model(4 if embedding else 3, seed=2, mode="tf", normalize=embedding)
    images, heatmaps, targets = _data(9, seed=3)
    substrate = fm.model_substrate(model)
    got = fm.average_drop_increase(lambda x: model(x), images, heatmaps, targets,
                                   embedding=embedding, substrate=substrate, batch_size=4)
    drops, increases = [], []
    for i in range(9):
        reference = model(images[i:i + 1]).numpy()[0].astype(np.float64) if embedding else None
        y = _score(model, images[i], targets[i], reference)
        # E = image ⊙ heatmap in the model's input space ("tf": x / 127.5 - 1).
        explained = (heatmaps[i][..., None] * (images[i] / 127.5 - 1) + 1) * 127.5
        o = _score(model, explained.astype(np.float32), targets[i], reference)
        drops.append(max(0.0, y - o) / y)
        increases.append(o > y)
    assert got["average_drop"] == pytest.approx(100 * np.mean(drops), rel=1e-4)
    assert got["increase_in_confidence"] == pytest.approx(100 * np.mean(increases))


def test_pointing_game_by_hand():
    heatmaps = np.zeros((5, 40, 40))
    heatmaps[0, 10, 10] = 1.0          # inside the box
    heatmaps[1, 10, 34] = 1.0          # 4 px right of x1 = 30 (exclusive): inside the tolerance
    heatmaps[2, 10, 39] = 1.0          # 9 px right of the box: outside a 5-px tolerance
    heatmaps[3] = 0.5                  # constant: points nowhere
    heatmaps[4, 2, 2] = heatmaps[4, 30, 30] = 1.0  # tie: the first (2, 2), outside
    boxes = [np.array([[5, 5, 30, 30], [-1, -1, -1, -1]])] * 4 + [np.array([[20, 20, 35, 35]])]
    got = fm.pointing_game(heatmaps, boxes, tolerance=5)
    np.testing.assert_array_equal(got["hits"], [True, True, False, False, False])
    assert got["pointing_game"] == pytest.approx(0.4)
    assert fm.pointing_game(heatmaps[2:3], boxes[2:3], tolerance=10)["hits"][0]


def test_step_counts_cover_every_pixel():
    np.testing.assert_array_equal(fm.step_counts(10, 4), [0, 4, 8, 10])
    np.testing.assert_array_equal(fm.step_counts(8, 4), [0, 4, 8])
    np.testing.assert_allclose(fm.auc([[1.0, 0.5, 0.0]]), [0.5])


def _brute_xplique_curve(model, start, end, heatmap, counts, target, reference):
    # xplique CausalFidelity: np.argsort(flat)[::-1], the first `count` switched.
    order = np.argsort(heatmap.reshape(-1))[::-1]
    scores = []
    for count in counts:
        image = start.copy().reshape(-1, 3)
        image[order[:count]] = end.reshape(-1, 3)[order[:count]]
        scores.append(_score(model, image.reshape(H, W, 3), target, reference))
    return np.array(scores), np.mean(np.add(scores[:-1], scores[1:])) * 0.5


@pytest.mark.parametrize("embedding", [False, True])
def test_deletion_insertion_xplique_protocol_equal_brute_force(embedding):
    model = _tiny_model(4 if embedding else 3, seed=1, normalize=embedding)
    images, heatmaps, targets = _data(3, seed=4)
    heatmaps[1] = np.round(heatmaps[1] * 3) / 3  # ties: numpy's argsort order, as xplique
    substrate = fm.model_substrate(model)
    got = fm.deletion_insertion(lambda x: model(x), images, heatmaps, targets,
                                embedding=embedding, substrate=substrate, batch_size=5,
                                protocol="xplique", steps=4, max_percentage_perturbed=0.9)
    # floor(30 · 0.9) = 27 pixels in 4 steps: linspace 0, 6.75, 13.5, 20.25, 27 truncated.
    np.testing.assert_array_equal(got["counts"], [0, 6, 13, 20, 27])
    flat = np.broadcast_to(substrate, (H, W, 3))
    for i in range(3):
        reference = model(images[i:i + 1]).numpy()[0].astype(np.float64) if embedding else None
        for name, start, end in (("deletion", images[i], flat), ("insertion", flat, images[i])):
            curve, area = _brute_xplique_curve(model, start.copy(), end, heatmaps[i],
                                               got["counts"], targets[i], reference)
            np.testing.assert_allclose(got[f"{name}_curve"][i], curve, rtol=1e-4, atol=1e-6)
            assert got[name][i] == pytest.approx(area, rel=1e-4)


def test_xplique_steps_minus_one_is_one_pixel_per_step():
    from tfcaf.metrics import faithfulness_protocols as protocols
    np.testing.assert_array_equal(protocols.xplique_step_counts(30, -1, 0.5), np.arange(16))
    np.testing.assert_array_equal(protocols.xplique_step_counts(10, 3), [0, 3, 6, 10])


@pytest.mark.parametrize("protocol", ["xplique", "pytorch-grad-cam"])
def test_average_drop_protocols_equal_brute_force(protocol):
    model = _tiny_model(3, seed=2, mode="tf")
    images, heatmaps, targets = _data(6, seed=5)
    heatmaps = 3 * heatmaps - 1                         # signed: xplique takes |h|, min-max
    if protocol == "pytorch-grad-cam":
        heatmaps = np.clip(heatmaps, 0, 1)
    got = fm.average_drop_increase(lambda x: model(x), images, heatmaps, targets,
                                   substrate=fm.model_substrate(model), protocol=protocol)
    for i in range(6):
        y = _score(model, images[i], targets[i], None)
        mask = np.abs(heatmaps[i])
        if protocol == "xplique":
            mask = (mask - mask.min()) / (mask.max() - mask.min() + 1e-8)
        explained = (mask[..., None] * (images[i] / 127.5 - 1) + 1) * 127.5
        o = _score(model, explained.astype(np.float32), targets[i], None)
        drop = max(0.0, y - o) / (y + 1e-8) if protocol == "xplique" else max(0.0, y - o)
        assert got["drop"][i] == pytest.approx(drop, rel=1e-4, abs=1e-6)
        assert got["increase"][i] == (o > y)
