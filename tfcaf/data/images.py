"""Reading one image file: the one reader of the binaries and the datasets.

Every binary and every dataset pipeline reads images through `read_image`,
so that a file is read to the same pixels everywhere, and a file that
training would reject (absent, a folder, unreadable, truncated) is rejected
everywhere with the same message naming it.

Every bit depth and mode is read to float RGB on the [0, 255] scale:
integer samples are divided by their type's full range (255 for 1- to 8-bit
files, palettes and CMYK, 65535 for 16-bit), so a 16-bit image equals its
8-bit version up to rounding. Floating-point (PIL mode F) and 32-bit integer
(mode I) images have no range of their own; their values are taken on the
[0, 255] scale, as PIL's and OpenCV's own conversions take them, and refused
outside it.

Alpha is composited on white: dropping it would expose whatever colours the
encoder left under transparent pixels (often black, sometimes garbage), so
two files that look the same would give different pixels; white is what a
viewer on a white page shows.

EXIF orientation is not applied: pixels are read as stored, as
`tf.io.decode_jpeg`, `keras.utils.load_img` and torchvision read them and as
the box annotations of CUB, ImageNet and `boxes.csv` refer to them.
`read_image` logs a warning for a file whose orientation tag says viewers
show it rotated or mirrored.
"""

import logging
import os

import cv2
import numpy as np

from tfcaf.data.checks import DataError, open_image

log = logging.getLogger(__name__)

_ORIENTATION_TAG = 0x0112
_ORIENTATIONS = {2: "mirrored", 3: "rotated 180°", 4: "flipped upside down",
                 5: "mirrored and rotated 90°", 6: "rotated 90°",
                 7: "mirrored and rotated 270°", 8: "rotated 270°"}


def read_image(path, warn=True):
    """The image at `path` as RGB pixels on the [0, 255] scale.

    Args:
        path: an image file PIL can decode (JPEG, PNG, BMP, GIF, TIFF,
            WebP, ...) in any bit depth and mode; only the first frame of
            an animation is read.
        warn: log a warning when the file's EXIF orientation is not applied
            (the datasets, which read thousands of files, turn it off).

    Returns:
        (H, W, 3) float32 numpy array, RGB, values in [0, 255] (integers
        for 8-bit files without alpha).

    Raises:
        DataError: `path` is absent, a folder, not a readable image, a
            JPEG/PNG cut short, or a float/32-bit image with values outside
            [0, 255] (the message names the file).
    """
    with open_image(path) as image:
        image.load()  # PIL checks CRCs and stops at damaged data
        samples, full_scale = _samples(path, image)
        orientation = image.getexif().get(_ORIENTATION_TAG, 1)
    if warn and orientation in _ORIENTATIONS:
        log.warning("warning: %s has EXIF orientation %d (viewers show it %s): read as "
                    "stored; rotate the file itself to explain it as shown", path,
                    orientation, _ORIENTATIONS[orientation])
    return _rgb(samples, full_scale)


def _samples(path, image):
    """The loaded PIL `image`'s samples (H, W, C), C 1 (grey), 3 (RGB) or
    4 (RGBA), and the value of a full-intensity sample."""
    if image.format == "PNG" and _png_bit_depth(path) == 16:
        # PIL reads 16-bit colour PNGs at 8 bits (it has no 16-bit RGB
        # mode); OpenCV keeps all 16 and gives BGR(A) or grey.
        samples = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
        if samples is None:
            raise DataError(f"unreadable image {path}: OpenCV cannot decode it")
        if samples.ndim == 3:
            samples = cv2.cvtColor(samples, cv2.COLOR_BGRA2RGBA if samples.shape[2] == 4
                                   else cv2.COLOR_BGR2RGB)
        return _channels(samples), 65535.0
    if image.mode.startswith("I;16"):
        return _channels(np.asarray(image)), 65535.0
    if image.mode in ("I", "F"):
        return _channels(_unscaled(path, image)), 255.0
    rgb = image.convert("RGBA" if image.has_transparency_data else "RGB")
    return np.asarray(rgb), 255.0


def _unscaled(path, image):
    """Samples of a mode I or F image, which must lie in [0, 255]."""
    values = np.asarray(image, dtype=np.float64)
    if not np.isfinite(values).all():
        raise DataError(f"image {path} (mode {image.mode}) has non-finite values")
    low, high = values.min(), values.max()
    if low < 0 or high > 255:
        kind = "32-bit float" if image.mode == "F" else "32-bit integer"
        raise DataError(f"image {path} (mode {image.mode}, {kind}) has values in "
                        f"[{low:g}, {high:g}], outside [0, 255]: its scale is unknown; save "
                        "it as an 8- or 16-bit image")
    return values


def _channels(samples):
    return samples[..., None] if samples.ndim == 2 else samples


def _rgb(samples, full_scale):
    """(H, W, C) samples of full intensity `full_scale` -> (H, W, 3)
    float32 RGB on [0, 255], alpha composited on white."""
    values = samples.astype(np.float64) * (255.0 / full_scale)
    if values.shape[2] == 4:
        alpha = values[..., -1:] / 255.0
        values = values[..., :-1] * alpha + 255.0 * (1.0 - alpha)
    if values.shape[2] == 1:
        values = np.repeat(values, 3, axis=2)
    return values.astype(np.float32)


def _png_bit_depth(path):
    """The bit depth in a PNG file's IHDR chunk (byte 24: after the 8-byte
    signature, the chunk's length and type and the width and height)."""
    with open(path, "rb") as f:
        header = f.read(25)
    return header[24] if len(header) == 25 else None


def read_pixels(path):
    """`read_image` of a path as `tf.numpy_function` passes a string
    tensor (bytes in a tf.data graph, a 0-d array eagerly), without the
    orientation warning."""
    return read_image(os.fsdecode(np.asarray(path).item()), warn=False)
