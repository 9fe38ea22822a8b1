"""CUB-200-2011 in its published layout.

`data_dir` is the `CUB_200_2011` folder (or its parent) holding
    images.txt              <image_id> <relative path under images/>
    image_class_labels.txt  <image_id> <class_id>         (ids from 1)
    train_test_split.txt    <image_id> <1 train | 0 test>
    bounding_boxes.txt      <image_id> <x> <y> <width> <height>  (pixels)
    classes.txt             <class_id> <NNN.Class_name>
    images/<class folder>/<file>.jpg
Class ids become 0-based in the order of the sorted class ids; a box
(x, y, w, h) becomes (x, y, x + w, y + h). The retrieval splits take every
image of the first half of the classes (1-100: retrieval_train) or the
second half (101-200: retrieval_test), class ids renumbered from 0.
"""

import os
import re

import numpy as np

from tfcaf.data import checks, dataset
from tfcaf.errors import TfcafError

SPLITS = ("train", "test", "retrieval_train", "retrieval_test")
FILES = ("images.txt", "image_class_labels.txt", "train_test_split.txt",
         "bounding_boxes.txt", "classes.txt")


def _read_table(path, columns):
    """Rows of a whitespace-separated file keyed by their first field.

    Args:
        path: the file.
        columns: converters for the fields after the key (the last one
            takes the rest of the line, so names may hold spaces).

    Returns:
        list of (key int, tuple of converted fields).

    Raises:
        DataError: missing file or malformed line (names file and line).
    """
    checks.require_file(path, "CUB-200-2011 annotation file")
    rows = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            fields = line.split(None, len(columns))
            try:
                if len(fields) != len(columns) + 1:
                    raise TfcafError(f"expected {len(columns) + 1} fields")
                rows.append((int(fields[0]), tuple(
                    convert(v.strip()) for convert, v in
                    zip(columns, fields[1:]))))
            except ValueError as error:
                raise checks.DataError(
                    f"{path}:{number}: malformed line {line.strip()!r} "
                    f"({error})") from error
    return rows


def _root(data_dir):
    nested = os.path.join(data_dir, "CUB_200_2011")
    return nested if os.path.isfile(os.path.join(nested, FILES[0])) \
        else data_dir


def _lookup(table, image_id, path):
    if image_id not in table:
        raise checks.DataError(f"image id {image_id} has no entry in {path}")
    return table[image_id]


def read_cub(data_dir):
    """All CUB images as numpy metadata.

    Returns:
        dict with paths (N,) str, class_index (N,) int (0-based), is_train
        (N,) bool, boxes (list of (n, 4) float32), class_names, source.
    """
    root = _root(data_dir)
    path = {name: os.path.join(root, name) for name in FILES}
    images = _read_table(path["images.txt"], [str])
    labels = dict(_read_table(path["image_class_labels.txt"], [int]))
    is_train = dict(_read_table(path["train_test_split.txt"], [int]))
    boxes = {}
    for image_id, (x, y, w, h) in _read_table(path["bounding_boxes.txt"],
                                              [float] * 4):
        boxes.setdefault(image_id, []).append([x, y, x + w, y + h])
    classes = sorted(_read_table(path["classes.txt"], [str]))
    class_index = {class_id: i for i, (class_id, _) in enumerate(classes)}
    label_file = path["image_class_labels.txt"]
    for image_id, (class_id,) in labels.items():
        if class_id not in class_index:
            raise checks.DataError(
                f"{label_file}: image id {image_id} has class {class_id}, "
                f"absent from {path['classes.txt']}")
    ids = [image_id for image_id, _ in images]
    return {
        "paths": np.array([os.path.join(root, "images", name)
                           for _, (name,) in images], dtype=str),
        "class_index": np.array([class_index[_lookup(labels, i, label_file)[0]]
                                 for i in ids], dtype=np.int64),
        "is_train": np.array([_lookup(is_train, i, path[
            "train_test_split.txt"])[0] == 1 for i in ids]),
        "boxes": [_lookup(boxes, i, path["bounding_boxes.txt"]) for i in ids],
        "class_names": [re.sub(r"^\d+\.", "", name) for _, (name,) in classes],
        "source": path["images.txt"],
    }


def load_cub(data_dir, split="train", *, image_size=224, resize="resize",
             check="header", skip_bad_images=False):
    """CUB-200-2011 split `split` ("train", "test", "retrieval_train",
    "retrieval_test") as an `ImageDataset`; see `load_dataset`."""
    if split not in SPLITS:
        raise TfcafError(f"CUB split {split!r} not in {SPLITS} (CUB-200-2011 "
                         "has no validation split)")
    cub = read_cub(data_dir)
    labels, names = cub["class_index"], cub["class_names"]
    if split in ("train", "test"):
        keep = cub["is_train"] == (split == "train")
    else:
        half = len(names) // 2
        first = 0 if split == "retrieval_train" else half
        names = names[:half] if first == 0 else names[half:]
        keep = (labels >= first) & (labels < first + len(names))
        labels = labels - first
    data = dataset.ImageDataset(
        name="cub", split=split, paths=cub["paths"][keep],
        labels=labels[keep],
        boxes=[b for b, k in zip(cub["boxes"], keep) if k],
        class_names=names, image_size=image_size, resize=resize,
        source=cub["source"])
    return data.check(check, skip_bad_images)
