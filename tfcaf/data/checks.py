"""Validation of listed images and boxes before any pipeline runs.

TensorFlow's decoders fail on a corrupt file with a message that does not
name it, deep inside a tf.data iterator. Checking every listed example once,
when the dataset is loaded, turns that into an error naming the file (or,
with `skip_bad_images`, a logged warning and an example left out, so that
the labels array the samplers see matches the pipeline).
"""

import contextlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from tfcaf.errors import TfcafError

log = logging.getLogger(__name__)

CHECK_LEVELS = ("none", "exists", "header", "full")
BOX_TOLERANCE = 1.0
"""Pixels a box may reach past the image border before it counts as
outside. Annotations disagree on inclusive vs. exclusive right edges, which
moves an edge by one pixel; within this tolerance boxes are clipped."""


class DataError(TfcafError):
    """A dataset file is missing, malformed or corrupt (the message names it)."""


def _tail_is_complete(path, data_format):
    """False when a JPEG lacks its end-of-image marker or a PNG its IEND
    chunk in the last KiB: the usual signature of a truncated download."""
    if data_format not in ("JPEG", "PNG"):
        return True
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 1024))
        tail = f.read()
    # In JPEG entropy-coded data a 0xFF byte is always stuffed or a restart
    # marker, so FF D9 near the end can only be the end-of-image marker.
    marker = b"\xff\xd9" if data_format == "JPEG" else b"IEND"
    return marker in tail


@contextlib.contextmanager
def open_image(path):
    """The PIL image at `path`, open, after the checks of level "header"
    (see `check_examples`); an error of PIL inside the block becomes a
    DataError naming `path`.

    Raises:
        DataError: absent file, a folder, unreadable or truncated file.
    """
    _check_exists(path)
    try:
        with Image.open(path) as image:
            if not _tail_is_complete(path, image.format):
                raise DataError(f"truncated image: {path}")
            yield image
    except DataError:
        raise
    except Exception as error:  # PIL raises many types for corrupt data
        raise DataError(f"unreadable image {path}: {error}") from error


def _check_exists(path):
    if os.path.isdir(path):
        raise DataError(f"{path} is a folder, not an image")
    if not os.path.isfile(path):
        raise DataError(f"image file absent: {path}")


def check_image(path, level="header"):
    """(width, height) of the image at `path`, in pixels, after the checks
    of `level` (see `check_examples`); None for level "exists".

    Raises:
        DataError: absent file, a folder, unreadable or (level "header" or
            "full") truncated file, naming `path`.
    """
    if level == "exists":
        _check_exists(path)
        return None
    with open_image(path) as image:
        if level == "full":
            image.load()
        return image.size


def _check_boxes(path, boxes, size):
    """Boxes (n, 4) clipped to the image; DataError when one lies outside
    by more than `BOX_TOLERANCE` pixels or is empty."""
    if size is None or len(boxes) == 0:
        return boxes
    width, height = size
    limits = np.array([0, 0, width, height], np.float32)
    for box in boxes:
        outside = (box[0] < -BOX_TOLERANCE or box[1] < -BOX_TOLERANCE
                   or box[2] > width + BOX_TOLERANCE
                   or box[3] > height + BOX_TOLERANCE)
        if outside or box[2] <= box[0] or box[3] <= box[1]:
            raise DataError(
                f"box {box.tolist()} (x_min, y_min, x_max, y_max) outside "
                f"image {path} of size {width}x{height} or empty")
    return np.clip(boxes, 0, limits[[2, 3, 2, 3]]).astype(np.float32)


def _check_one(args):
    path, boxes, level = args
    try:
        return _check_boxes(path, boxes, check_image(path, level)), None
    except DataError as error:
        return None, str(error)


def check_examples(paths, boxes, *, level="header", skip_bad_images=False,
                   listed_in="", workers=8):
    """Checks that each listed image is usable and its boxes lie inside it.

    Args:
        paths: N image paths.
        boxes: N arrays (n_i, 4) float32, (x_min, y_min, x_max, y_max) in
            pixels of the stored image.
        level: "none" (trust the list), "exists" (files exist), "header"
            (also decodable header, complete JPEG/PNG tail, boxes inside
            the image), or "full" (also decode every pixel).
        skip_bad_images: log and leave out bad examples instead of raising.
        listed_in: the annotation file that lists the images, for messages.
        workers: threads reading files (I/O bound, so more than the cores).

    Returns:
        (keep, boxes): bool array (N,) of usable examples, and the boxes
        clipped to their image.

    Raises:
        DataError: the first bad example, when `skip_bad_images` is False.
    """
    if level not in CHECK_LEVELS:
        raise TfcafError(f"check level {level!r} not in {CHECK_LEVELS}")
    if level == "none":
        return np.ones(len(paths), bool), list(boxes)
    keep = np.ones(len(paths), bool)
    checked = []
    jobs = ((p, b, level) for p, b in zip(paths, boxes))
    where = f" (listed in {listed_in})" if listed_in else ""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, (clipped, error) in enumerate(pool.map(_check_one, jobs,
                                                      chunksize=64)):
            if error is not None:
                if not skip_bad_images:
                    raise DataError(error + where)
                log.warning("warning: skipping bad example: %s%s", error, where)
                keep[i] = False
            checked.append(clipped)
            if (i + 1) % 20000 == 0:
                log.info("checked %d / %d images", i + 1, len(paths))
    if not keep.all():
        log.warning("warning: skipped %d of %d examples", (~keep).sum(), len(paths))
    return keep, checked


def require_file(path, what):
    """Raises DataError naming `path` when it is not an existing file."""
    if not os.path.isfile(path):
        raise DataError(f"missing {what}: {path}")
    return path


def require_boxes(dataset, needed_by):
    """Refuses a dataset without ground-truth boxes for the metrics that
    read them, naming the missing box file; warns once when only some
    examples lack a box (the metrics count those as misses).

    Args:
        dataset: an `ImageDataset`; a dataset that lists no `boxes` (one
            that only yields them from its pipeline) is not checked.
        needed_by: what reads the boxes, e.g. "--metric=iou".

    Raises:
        DataError: no example has a box.
    """
    listed = getattr(dataset, "boxes", None)
    if listed is None:
        return
    boxed = sum(len(b) > 0 for b in listed)
    box_file = dataset.box_file
    if boxed == 0:
        if box_file and not os.path.exists(box_file):
            raise DataError(f"{needed_by} needs boxes: {box_file} does not exist")
        where = f" in {box_file}" if box_file else ""
        raise DataError(f"{needed_by} needs boxes: none of the {len(listed)} images of "
                        f"{dataset.name}/{dataset.split} has a box{where}")
    if boxed < len(listed):
        where = f" in {box_file}" if box_file else ""
        log.warning("warning: %d of %d images of %s/%s have no box%s: %s counts them as "
                    "misses", len(listed) - boxed, len(listed), dataset.name, dataset.split,
                    where, needed_by)
