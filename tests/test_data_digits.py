"""The embedded cluttered-digits set: determinism, tight boxes, splits,
cache behaviour, and that a small CNN learns it."""

import json
import os
import time

import cv2
import keras
import numpy as np
import pytest
import sklearn.datasets
from PIL import Image

from tfcaf.data import DataError, DigitsConfig, digits, load_dataset

SMALL = DigitsConfig(copies=(1, 1, 1), seed=5)


@pytest.fixture(scope="module")
def default_set(tmp_path_factory):
    """The default set, generated once for this module."""
    root = str(tmp_path_factory.mktemp("cache"))
    start = time.process_time()
    folder, annotations = digits.ensure_digits(DigitsConfig(), root)
    print(f"generated {len(annotations['images'])} canvases in "
          f"{time.process_time() - start:.1f} s CPU")
    return root, folder, annotations


def test_same_seed_gives_byte_identical_files(tmp_path):
    a, _ = digits.ensure_digits(SMALL, str(tmp_path / "a"))
    b, _ = digits.ensure_digits(SMALL, str(tmp_path / "b"))
    c, _ = digits.ensure_digits(DigitsConfig(copies=(1, 1, 1), seed=6),
                                str(tmp_path / "c"))

    def read(folder, name):
        with open(os.path.join(folder, name), "rb") as f:
            return f.read()
    assert read(a, "annotations.json") == read(b, "annotations.json")
    assert read(a, "annotations.json") != read(c, "annotations.json")
    some = json.loads(read(a, "annotations.json"))["images"][::97]
    for record in some:
        assert read(a, record["file"]) == read(b, record["file"])


def test_boxes_are_tight_and_clutter_stays_away(default_set):
    _, folder, annotations = default_set
    for record in annotations["images"][::23]:
        image = np.asarray(Image.open(os.path.join(folder, record["file"])),
                           np.float32)
        x0, y0, x1, y1 = record["box"]
        outside = np.ones(image.shape[:2], bool)
        outside[y0:y1, x0:x1] = False
        # Ink differs from the background by >= 100 * 0.35 - 8 noise per
        # channel; noise alone by <= 8 (+1 rounding).
        background = np.median(image[outside], axis=0)
        ink = np.abs(image - background).max(axis=-1) > 20
        inside = ink[y0:y1, x0:x1]
        assert inside[0].any() and inside[-1].any(), record
        assert inside[:, 0].any() and inside[:, -1].any(), record
        ring = ink[max(y0 - 2, 0):y1 + 2, max(x0 - 2, 0):x1 + 2].copy()
        ring[y0 - max(y0 - 2, 0):, x0 - max(x0 - 2, 0):][
            :y1 - y0, :x1 - x0] = False
        assert not ring.any(), record
        # The digit is the largest object: every connected piece of clutter
        # ink is shorter than the digit's box.
        _, _, stats, _ = cv2.connectedComponentsWithStats(
            (ink & outside).astype(np.uint8), connectivity=8)
        longest = stats[1:, [cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT]].max(
            initial=0)
        assert longest < max(x1 - x0, y1 - y0), record


def test_splits_by_source_and_labels_from_sklearn(default_set):
    _, _, annotations = default_set
    target = sklearn.datasets.load_digits().target
    sources = {}
    for record in annotations["images"]:
        assert record["label"] == target[record["source"]]
        sources.setdefault(record["split"], set()).add(record["source"])
    assert not sources["train"] & sources["val"]
    assert not sources["train"] & sources["test"]
    assert not sources["val"] & sources["test"]
    assert len(sources["train"] | sources["val"] | sources["test"]) == 1797
    counts = {s: sum(r["split"] == s for r in annotations["images"])
              for s in ("train", "val", "test")}
    assert counts == {s: len(sources[s]) * c for s, c in
                      zip(("train", "val", "test"), (4, 2, 2))}


def test_retrieval_splits_by_class(default_set):
    root, _, annotations = default_set
    train = load_dataset("digits", root, "retrieval_train")
    test = load_dataset("digits", root, "retrieval_test")
    labels = np.array([r["label"] for r in annotations["images"]])
    assert len(train) == (labels < 5).sum() and len(test) == (labels >= 5).sum()
    assert train.class_names == list("01234")
    assert test.class_names == list("56789")
    np.testing.assert_array_equal(np.unique(test.labels), np.arange(5))
    # Renumbered ids: a test label 0 is a five.
    first = test.paths[0]
    record = next(r for r in annotations["images"] if first.endswith(r["file"]))
    assert record["label"] == test.labels[0] + 5


def test_cache_is_reused_and_interrupted_generation_leaves_nothing(
        tmp_path, monkeypatch):
    root = str(tmp_path)
    folder, _ = digits.ensure_digits(SMALL, root)
    stamp = os.stat(os.path.join(folder, "annotations.json")).st_mtime_ns

    def fail(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(digits, "generate", fail)
    assert digits.ensure_digits(SMALL, root)[0] == folder  # no regeneration
    assert os.stat(os.path.join(folder, "annotations.json")).st_mtime_ns == stamp
    other = DigitsConfig(copies=(1, 1, 1), seed=9)
    with pytest.raises(KeyboardInterrupt):
        digits.ensure_digits(other, root)
    assert sorted(os.listdir(root)) == [os.path.basename(folder)]


def test_xdg_cache_home_is_the_default_root(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert digits.default_cache_dir() == os.path.join(str(tmp_path), "tfcaf")


def test_deleted_image_is_named(tmp_path):
    folder, annotations = digits.ensure_digits(SMALL, str(tmp_path))
    victim = os.path.join(folder, annotations["images"][0]["file"])
    os.remove(victim)
    with pytest.raises(DataError, match=victim):
        load_dataset("digits", str(tmp_path), "train", config=SMALL)


def _small_cnn():
    """About 90 k parameters; sees the canvas at a third of its size."""
    layers = keras.layers
    x = inputs = keras.Input((96, 96, 3))
    x = layers.AveragePooling2D(3)(layers.Rescaling(1 / 255)(inputs))
    for filters, pool in ((16, True), (32, True), (64, True), (64, False)):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.ReLU()(layers.BatchNormalization(momentum=0.9)(x))
        x = layers.MaxPooling2D(2)(x) if pool else x
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(10)(x))


def _arrays(data):
    images, labels = [], []
    for x, y, _ in data.pipeline(256):
        images.append(x.numpy().astype(np.uint8))
        labels.append(y.numpy())
    return np.concatenate(images), np.concatenate(labels)


@pytest.mark.slow
def test_small_cnn_reaches_90_percent(default_set):
    """Budget: 4 epochs over the 4,312 training canvases, batch 64 (272
    steps), about 25-40 s on 2 shared CPU cores."""
    root = default_set[0]
    x_train, y_train = _arrays(load_dataset("digits", root, "train"))
    x_test, y_test = _arrays(load_dataset("digits", root, "test"))
    keras.utils.set_random_seed(0)
    model = _small_cnn()
    steps = 4 * int(np.ceil(len(x_train) / 64))
    model.compile(
        keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(
            3e-3, steps)),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"])
    start = time.time()
    model.fit(x_train, y_train, batch_size=64, epochs=4, verbose=0)
    accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
    print(f"test accuracy {accuracy:.3f} after {time.time() - start:.0f} s")
    assert accuracy >= 0.90
