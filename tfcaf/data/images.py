"""Reading one image file, with the checks training applies to datasets.

Every binary reads user images through `read_image`, so that a file that
training would reject (absent, a folder, unreadable, truncated) is rejected
everywhere with the same message naming it.
"""

import numpy as np
from PIL import Image

from tfcaf.data.checks import DataError, check_image


def read_image(path):
    """The image at `path` as RGB pixels.

    Args:
        path: an image file PIL can decode (JPEG, PNG, BMP, GIF, ...); only
            the first frame of an animation is read.

    Returns:
        (H, W, 3) uint8 numpy array, RGB.

    Raises:
        DataError: `path` is absent, a folder, not a readable image, or a
            JPEG/PNG cut short (the message names the file).
    """
    check_image(path, level="full")
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except Exception as error:  # PIL raises many types for corrupt data
        raise DataError(f"unreadable image {path}: {error}") from error
