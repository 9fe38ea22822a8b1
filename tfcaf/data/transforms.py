"""Geometric transforms of an image and its boxes, kept in step.

Box convention (everywhere in `tfcaf.data`): float32 rows
(x_min, y_min, x_max, y_max) in continuous pixel coordinates of the image
they belong to, with the top-left corner of the image at (0, 0) and x_max,
y_max EXCLUSIVE: a box covering pixel columns 3..7 (inclusive) has
x_min = 3, x_max = 8, and a W-pixel-wide image spans [0, W]. With that
convention every transform below is an exact affine map, consistent with
`tf.image.resize` (half-pixel centres):
    resize by (sy, sx):      x -> x * sx,             y -> y * sy
    crop at offset (oy, ox): x -> x - ox, clipped to [0, crop width]
    horizontal flip:         (x_min, x_max) -> (W - x_max, W - x_min)
Padding rows, where a fixed count is needed, are all -1.
"""

import dataclasses

import tensorflow as tf

from tfcaf.models.preprocessing import check_mode, preprocess_pixels
from tfcaf.errors import TfcafError

RESIZE_MODES = ("resize", "crop")

@dataclasses.dataclass(frozen=True)
class Augment:
    """Training augmentation: a random crop of the stored image (integer
    window, `area` fraction of the image area, width/height ratio in
    `aspect`), resized to the model's size, then a horizontal flip with
    probability 0.5 when `flip` (off for digits: a mirrored 2 is no digit).
    """
    area: tuple = (0.25, 1.0)
    aspect: tuple = (3 / 4, 4 / 3)
    flip: bool = True


def preprocess_fn(preprocess):
    """The function mapping float32 RGB [0, 255] to a backbone's input.

    Args:
        preprocess: None (identity: tfcaf models preprocess inside), a mode
            of `tfcaf.models.preprocessing.MODES` (e.g. "caffe" for an
            external ResNet50/VGG16), or a callable.

    Raises:
        TfcafError: an unknown mode name (the message lists them).
    """
    if preprocess is None or callable(preprocess):
        return preprocess or (lambda image: image)
    mode = check_mode(preprocess)
    return lambda image: preprocess_pixels(image, mode)


def resize_boxes(boxes, src_hw, dst_hw):
    """Boxes (n, 4) of an image of size `src_hw` (H, W) resized to `dst_hw`."""
    src = tf.cast(src_hw, tf.float32)
    dst = tf.cast(dst_hw, tf.float32)
    sy, sx = dst[0] / src[0], dst[1] / src[1]
    return boxes * tf.stack([sx, sy, sx, sy])


def crop_boxes(boxes, offset_yx, crop_hw):
    """Boxes (n, 4) in a crop with top-left `offset_yx` (y, x) and size
    `crop_hw` (h, w), pixels, clipped to the crop."""
    offset = tf.cast(offset_yx, tf.float32)
    size = tf.cast(crop_hw, tf.float32)
    shifted = boxes - tf.stack([offset[1], offset[0], offset[1], offset[0]])
    return tf.clip_by_value(shifted, 0.0,
                            tf.stack([size[1], size[0], size[1], size[0]]))


def flip_boxes(boxes, width):
    """Boxes (n, 4) of an image `width` pixels wide, flipped left-right."""
    width = tf.cast(width, tf.float32)
    x_min, y_min, x_max, y_max = tf.unstack(boxes, axis=-1)
    return tf.stack([width - x_max, y_min, width - x_min, y_max], axis=-1)


def pad_boxes(boxes, count):
    """Boxes with positive area first, padded with -1 rows to (count, 4).

    Boxes cropped away entirely (zero area) are dropped; rows beyond
    `count` are cut.
    """
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    boxes = tf.boolean_mask(boxes, keep)[:count]
    padding = -tf.ones([count - tf.shape(boxes)[0], 4], tf.float32)
    return tf.ensure_shape(tf.concat([boxes, padding], 0), (count, 4))


def _resize(image, boxes, size_hw):
    src = tf.shape(image)[:2]
    image = tf.image.resize(image, size_hw, method="bilinear")
    return image, resize_boxes(boxes, src, size_hw)


def _crop(image, boxes, offset_yx, crop_hw):
    image = tf.image.crop_to_bounding_box(image, offset_yx[0], offset_yx[1],
                                          crop_hw[0], crop_hw[1])
    return image, crop_boxes(boxes, offset_yx, crop_hw)


def resize_and_center_crop(image, boxes, size_hw, crop_fraction):
    """Scales the image (aspect kept) so that `size_hw` is `crop_fraction`
    of it along its tighter axis, then crops its centre to `size_hw`
    (the usual 256 -> 224 evaluation crop for 224 and 0.875)."""
    src = tf.cast(tf.shape(image)[:2], tf.float32)
    size = tf.constant(size_hw, tf.float32)
    scale = tf.reduce_max(size / src) / crop_fraction
    scaled = tf.maximum(tf.cast(tf.round(src * scale), tf.int32),
                        tf.constant(size_hw, tf.int32))
    image, boxes = _resize(image, boxes, scaled)
    offset = (scaled - tf.constant(size_hw, tf.int32)) // 2
    return _crop(image, boxes, offset, size_hw)


def random_window(image_hw, augment, seed):
    """Random integer crop window ((y, x), (h, w)) of an image (H, W),
    drawn from `augment` with the stateless `seed` (2,)."""
    seeds = tf.random.experimental.stateless_split(seed, 4)
    hw = tf.cast(image_hw, tf.float32)
    area = tf.random.stateless_uniform([], seeds[0], *augment.area) \
        * hw[0] * hw[1]
    log_ratio = tf.random.stateless_uniform(
        [], seeds[1], tf.math.log(augment.aspect[0]),
        tf.math.log(augment.aspect[1]))
    ratio = tf.exp(log_ratio)
    w = tf.clip_by_value(tf.cast(tf.round(tf.sqrt(area * ratio)), tf.int32),
                         1, image_hw[1])
    h = tf.clip_by_value(tf.cast(tf.round(tf.sqrt(area / ratio)), tf.int32),
                         1, image_hw[0])
    y = tf.random.stateless_uniform([], seeds[2], 0, image_hw[0] - h + 1,
                                    dtype=tf.int32)
    x = tf.random.stateless_uniform([], seeds[3], 0, image_hw[1] - w + 1,
                                    dtype=tf.int32)
    return tf.stack([y, x]), tf.stack([h, w])


def random_crop_flip(image, boxes, size_hw, augment, seed):
    """Augmentation: random window of the image resized to `size_hw`, then
    a flip when `augment.flip` and a coin drawn from `seed` say so."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    offset, crop_hw = random_window(tf.shape(image)[:2], augment, seeds[0])
    image, boxes = _crop(image, boxes, offset, crop_hw)
    image, boxes = _resize(image, boxes, size_hw)
    if augment.flip:
        flip = tf.random.stateless_uniform([], seeds[1]) < 0.5
        image = tf.cond(flip, lambda: tf.image.flip_left_right(image),
                        lambda: image)
        boxes = tf.cond(flip, lambda: flip_boxes(boxes, size_hw[1]),
                        lambda: boxes)
    return image, boxes


def fit_image(image, boxes, size_hw, mode, crop_fraction):
    """Deterministic geometry: `mode` "resize" (whole image to `size_hw`,
    aspect not kept) or "crop" (`resize_and_center_crop`)."""
    if mode == "resize":
        return _resize(image, boxes, size_hw)
    if mode == "crop":
        return resize_and_center_crop(image, boxes, size_hw, crop_fraction)
    raise TfcafError(f"resize mode {mode!r} not in {RESIZE_MODES}")
