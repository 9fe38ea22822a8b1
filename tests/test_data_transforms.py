"""Box transforms against hand computations, and images and boxes kept in
step through the pipelines."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfcaf.data import Augment, ImageDataset, transforms

# A 200 x 100 (W x H) image whose pixel columns 80..139 and rows 20..89 are
# white: box (80, 20, 140, 90) with exclusive right/bottom edges.
BOX = [80.0, 20.0, 140.0, 90.0]


def _write(path, height=100, width=200, box=BOX):
    pixels = np.zeros((height, width, 3), np.uint8)
    x0, y0, x1, y1 = (int(v) for v in box)
    pixels[y0:y1, x0:x1] = 255
    Image.fromarray(pixels).save(path)
    return str(path)


def _ink_box(image):
    """(x_min, y_min, x_max, y_max) of the pixels above half intensity."""
    mask = np.asarray(image).max(axis=-1) > 127.5
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]


def test_resize_boxes_hand_computed():
    # (100, 200) -> (50, 50): x scaled by 50/200 = 0.25, y by 50/100 = 0.5.
    boxes = transforms.resize_boxes(tf.constant([[20., 10., 60., 50.]]),
                                    (100, 200), (50, 50))
    np.testing.assert_allclose(boxes, [[5., 5., 15., 25.]])


def test_crop_and_flip_boxes_hand_computed():
    # Crop at (y, x) = (10, 100) of size (h, w) = (50, 60):
    # (80-100, 20-10, 140-100, 90-10) = (-20, 10, 40, 80), clipped to
    # x in [0, 60], y in [0, 50] -> (0, 10, 40, 50).
    cropped = transforms.crop_boxes(tf.constant([BOX]), (10, 100), (50, 60))
    np.testing.assert_allclose(cropped, [[0., 10., 40., 50.]])
    # Flip in a 60-wide image: x -> 60 - x, min and max swap.
    np.testing.assert_allclose(transforms.flip_boxes(cropped, 60),
                               [[20., 10., 60., 50.]])


def test_resize_and_center_crop_hand_computed():
    # 64 at crop fraction 0.8: shorter side 100 -> 80, scale 0.8, image
    # (80, 160); box -> (64, 16, 112, 72); centre crop offsets
    # y = (80 - 64) / 2 = 8, x = (160 - 64) / 2 = 48 -> (16, 8, 64, 64).
    image = tf.zeros((100, 200, 3), tf.uint8)
    out, boxes = transforms.resize_and_center_crop(
        image, tf.constant([BOX]), (64, 64), 0.8)
    assert out.shape == (64, 64, 3)
    np.testing.assert_allclose(boxes, [[16., 8., 64., 64.]])


def test_pad_boxes_drops_empty_and_pads_with_minus_one():
    boxes = tf.constant([[0., 0., 0., 5.], [1., 1., 3., 3.]])
    np.testing.assert_array_equal(
        transforms.pad_boxes(boxes, 3),
        [[1, 1, 3, 3], [-1, -1, -1, -1], [-1, -1, -1, -1]])


@pytest.fixture
def one_image(tmp_path):
    path = _write(tmp_path / "a.png")
    return ImageDataset(name="t", split="train", paths=[path], labels=[0],
                        boxes=[[BOX]], class_names=["a"], image_size=64)


@pytest.mark.parametrize("resize, expected", [
    ("resize", [80 * 64 / 200, 20 * 64 / 100, 140 * 64 / 200, 90 * 64 / 100]),
    ("crop", [16., 8., 64., 64.])])
def test_example_image_and_boxes_agree(one_image, resize, expected):
    data = dataclasses.replace(one_image, crop_fraction=0.8, resize=resize)
    image, label, boxes = data.example(tf.constant(0, tf.int64))
    np.testing.assert_allclose(boxes, [expected], atol=1e-4)
    assert label == 0 and image.dtype == tf.float32
    assert image.shape == (64, 64, 3)
    np.testing.assert_allclose(_ink_box(image), boxes[0], atol=1.0)


def test_augmented_boxes_follow_random_crop_and_flip(one_image):
    data = dataclasses.replace(one_image,
                               augment=Augment(area=(0.5, 1.0), flip=True))
    lefts = set()
    for seed in range(12):
        image, _, boxes = data.example(tf.constant(0, tf.int64), augment=True,
                                       seed=tf.constant([seed, 7]))
        box = boxes.numpy()[0]
        if box[0] < 0:  # the random crop missed the white rectangle
            assert not (image.numpy() > 127.5).any()
            continue
        np.testing.assert_allclose(_ink_box(image), box, atol=1.0)
        lefts.add(round(float(box[0])))
    assert len(lefts) > 3  # the crops and flips do vary with the seed


def test_pipeline_batches_pads_and_preprocesses(tmp_path):
    paths = [_write(tmp_path / f"{i}.png") for i in range(3)]
    boxes = [[], [BOX], [BOX, [0., 0., 100., 50.]]]
    data = ImageDataset(name="t", split="train", paths=paths, labels=[2, 0, 1],
                        boxes=boxes, class_names=["a", "b", "c"],
                        image_size=(50, 100))
    images, labels, batch_boxes = next(iter(data.pipeline(3)))
    assert images.shape == (3, 50, 100, 3) and labels.dtype == tf.int32
    np.testing.assert_array_equal(labels, [2, 0, 1])
    half = [40., 10., 70., 45.]  # BOX at half size
    np.testing.assert_allclose(batch_boxes, [
        [[-1] * 4, [-1] * 4], [half, [-1] * 4], [half, [0., 0., 50., 25.]]])
    vgg, _, _ = next(iter(data.pipeline(3, preprocess="caffe")))
    # "caffe" (VGG16): RGB -> BGR, minus the ImageNet means (103.939, 116.779, 123.68).
    corner = images.numpy()[0, 0, 0]
    np.testing.assert_allclose(vgg.numpy()[0, 0, 0], corner[::-1] - [
        103.939, 116.779, 123.68], atol=1e-3)
    with pytest.raises(ValueError, match="unknown preprocess"):
        data.pipeline(3, preprocess="nope")


def test_from_indices_keeps_index_batches_and_seeds(tmp_path):
    paths = [_write(tmp_path / f"{i}.png") for i in range(3)]
    data = ImageDataset(name="t", split="train", paths=paths, labels=[0, 1, 2],
                        boxes=[[BOX]] * 3, class_names=list("abc"),
                        image_size=32)
    batches = tf.data.Dataset.from_tensor_slices(
        tf.constant([[2, 0], [1, 1]], tf.int64))
    labels = [b[1].numpy().tolist() for b in data.from_indices(batches)]
    assert labels == [[2, 0], [1, 1]]

    def run(seed):
        return np.concatenate([b[0].numpy() for b in data.pipeline(
            2, shuffle=True, augment=True, seed=seed)])
    np.testing.assert_array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))


def test_a_stream_restarted_at_a_position_repeats_the_original(tmp_path):
    # What a resumed training run relies on: example p is augmented with
    # the seed (seed, p) wherever the stream starts.
    paths = [_write(tmp_path / f"{i}.png") for i in range(3)]
    data = ImageDataset(name="t", split="train", paths=paths, labels=[0, 1, 2],
                        boxes=[[BOX]] * 3, class_names=list("abc"), image_size=32)
    order = tf.constant([[2, 0], [1, 1], [0, 2], [1, 0]], tf.int64)

    def images(batches, **options):
        return np.concatenate([b[0].numpy() for b in data.from_indices(
            tf.data.Dataset.from_tensor_slices(batches), seed=7, augment=True, **options)])
    whole = images(order)
    np.testing.assert_array_equal(images(order[2:], first_position=4), whole[4:])
    assert not np.array_equal(images(order[2:]), whole[4:])
