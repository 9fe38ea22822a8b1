"""Ground-truth foreground masks (for PxAP, `tfcaf.metrics.pxap`).

A mask is read as wsolevaluation's `get_mask` reads an OpenImages mask
(evaluation.py @ 96f4b88): every instance PNG (grayscale) is resized with
INTER_NEAREST, its non-zero pixels (> 0.5 on the 0-255 scale) are the
instance, and their union is the foreground (1); the ignore PNG's pixels outside the
foreground are ignored (255); the rest is background (0). The folder
dataset lists them in `masks.csv` with the header `path,mask_path,ignore_path`
(wsolevaluation's localization.txt with a header), one row per instance,
paths relative to the folder read; the digits set ships one mask per
canvas, its digit's ink.
"""

import csv
import os

import cv2
import numpy as np

from tfcaf.data import checks

MASK_HEADER = ["path", "mask_path", "ignore_path"]
FOREGROUND, BACKGROUND, IGNORED = 1, 0, 255


def _read(path, size_hw):
    image = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise checks.DataError(f"cannot read mask image {path}")
    return cv2.resize(np.float32(image), (size_hw[1], size_hw[0]),
                      interpolation=cv2.INTER_NEAREST) > 0.5


def read_mask(instance_paths, ignore_path, size_hw):
    """(H, W) uint8 mask at `size_hw`: `FOREGROUND` where any instance
    mask is set, `IGNORED` in the ignore mask elsewhere, else `BACKGROUND`.

    Args:
        instance_paths: mask image files of the object's instances.
        ignore_path: ignore-region image file, or "" for none.
        size_hw: (H, W) of the images the masks go with.
    """
    foreground = np.zeros(size_hw, bool)
    for path in instance_paths:
        foreground |= _read(path, size_hw)
    ignored = _read(ignore_path, size_hw) & ~foreground if ignore_path else \
        np.zeros(size_hw, bool)
    return (foreground.astype(np.uint8) * FOREGROUND + ignored.astype(np.uint8) * IGNORED)


def read_mask_table(path, known, root):
    """{relative image path: ([instance files], ignore file)} of a masks.csv
    whose image paths must be in `known`; files are joined to `root`."""
    checks.require_file(path, "mask file")
    table = {}
    with open(path, newline="") as f:
        reader = csv.reader(f)
        if next(reader, None) != MASK_HEADER:
            raise checks.DataError(f"{path}: header is not {','.join(MASK_HEADER)}")
        for number, row in enumerate(reader, 2):
            if len(row) != 3:
                raise checks.DataError(f"{path}:{number}: expected 3 fields, got {row}")
            name = os.path.normpath(row[0])
            if name not in known:
                raise checks.DataError(f"image listed but absent: {name} (listed in "
                                       f"{path}:{number})")
            instances, ignore = table.setdefault(name, ([], [""]))
            instances.append(os.path.join(root, row[1]))
            if row[2]:
                ignore[0] = os.path.join(root, row[2])
    return {name: (instances, ignore[0]) for name, (instances, ignore) in table.items()}


def fitted_mask(instance_paths, ignore_path, image_path, size_hw, resize, crop_fraction):
    """`read_mask` in the geometry the pipeline gives image `image_path`
    (`transforms.fit_image`): "resize" reads the mask at `size_hw`;
    "crop" at the scaled size, then takes the same centre crop. An
    example without masks is all `IGNORED`."""
    if not instance_paths:
        return np.full(size_hw, IGNORED, np.uint8)
    if resize == "resize":
        return read_mask(instance_paths, ignore_path, size_hw)
    from PIL import Image
    with Image.open(image_path) as image:
        source = np.array(image.size[::-1], np.float32)
    size = np.array(size_hw, np.float32)
    scale = np.float32((size / source).max() / np.float32(crop_fraction))
    scaled = np.maximum(np.round(source * scale).astype(np.int64), np.array(size_hw))
    y, x = (scaled - np.array(size_hw)) // 2
    mask = read_mask(instance_paths, ignore_path, tuple(int(v) for v in scaled))
    return mask[y:y + size_hw[0], x:x + size_hw[1]]
