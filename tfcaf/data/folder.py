"""A generic folder of class sub-folders.

    <data_dir>/[<split>/]<class name>/<image>.{jpg,jpeg,png,bmp,gif}
    <data_dir>/[<split>/]boxes.csv          (optional)
    <data_dir>/[<split>/]masks.csv          (optional)
Class ids are the positions of the class folder names in sorted order.
With split "train", "val" or "test" the folder `<data_dir>/<split>` is read
(it must exist); with split None, `<data_dir>` itself. The retrieval splits
read `<data_dir>` and take the first half of the sorted classes
(retrieval_train) or the second (retrieval_test), ids renumbered from 0.

`boxes.csv` has the header `path,x_min,y_min,x_max,y_max` and one row per
box: the image path relative to the folder read ("cat/001.jpg"), then the
box in pixels of the stored image, x_max and y_max exclusive. Images
without a row have no boxes. The metrics that read boxes (IoU, MaxBoxAcc,
pointing game) refuse a folder without `boxes.csv` (see
`checks.require_boxes`).

`masks.csv` lists ground-truth foreground masks as OpenImages does for
wsolevaluation (`tfcaf.data.masks`): header `path,mask_path,ignore_path`,
one row per instance mask (paths relative to the folder read); PxAP reads
them.
"""

import csv
import os

from tfcaf.data import checks, dataset, masks
from tfcaf.errors import TfcafError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
SPLITS = (None, "train", "val", "test", "retrieval_train", "retrieval_test")
BOX_HEADER = ["path", "x_min", "y_min", "x_max", "y_max"]


def read_boxes(path, known):
    """{relative image path: [[x_min, y_min, x_max, y_max], ...]} of a box
    CSV file; every path must be in `known` (the images found)."""
    checks.require_file(path, "box file")
    boxes = {}
    with open(path, newline="") as f:
        reader = csv.reader(f)
        if next(reader, None) != BOX_HEADER:
            raise checks.DataError(f"{path}: header is not "
                                   f"{','.join(BOX_HEADER)}")
        for number, row in enumerate(reader, 2):
            try:
                if len(row) != 5:
                    raise TfcafError("expected 5 fields")
                box = [float(v) for v in row[1:]]
            except ValueError as error:
                raise checks.DataError(
                    f"{path}:{number}: malformed row {row} ({error})") from error
            name = os.path.normpath(row[0])
            if name not in known:
                raise checks.DataError(
                    f"image listed but absent: {name} (listed in "
                    f"{path}:{number})")
            boxes.setdefault(name, []).append(box)
    return boxes


def _list_images(root):
    """Sorted class names and (relative path, class position) pairs."""
    if not os.path.isdir(root):
        raise checks.DataError(f"missing image folder: {root}")
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir())
    if not classes:
        raise checks.DataError(f"no class sub-folders in {root}")
    items = []
    for position, name in enumerate(classes):
        for parent, _, files in sorted(os.walk(os.path.join(root, name))):
            for file in sorted(files):
                if os.path.splitext(file)[1].lower() in IMAGE_EXTENSIONS:
                    relative = os.path.relpath(os.path.join(parent, file), root)
                    items.append((relative, position))
    return classes, items


def load_folder(data_dir, split=None, *, boxes=None, image_size=224,
                resize="resize", check="header", skip_bad_images=False, mask_file=None):
    """The folder dataset as an `ImageDataset`.

    Args:
        data_dir: the root folder (see the module docstring).
        split: one of `SPLITS`.
        boxes: box CSV file (default `boxes.csv` in the folder read, if any).
        mask_file: mask CSV file (default `masks.csv` in the folder read,
            if any).
        image_size, resize, check, skip_bad_images: see `load_dataset`.
    """
    if split not in SPLITS:
        raise TfcafError(f"folder split {split!r} not in {SPLITS}")
    plain = split in (None, "retrieval_train", "retrieval_test")
    root = data_dir if plain else os.path.join(data_dir, split)
    classes, items = _list_images(root)
    default_boxes = os.path.join(root, "boxes.csv")
    boxes = boxes or (default_boxes if os.path.isfile(default_boxes) else None)
    table = read_boxes(boxes, {p for p, _ in items}) if boxes else {}
    given, mask_file = mask_file, mask_file or os.path.join(root, "masks.csv")
    mask_table = masks.read_mask_table(mask_file, {p for p, _ in items}, root) \
        if given or os.path.isfile(mask_file) else None
    first, names = 0, classes
    if split in ("retrieval_train", "retrieval_test"):
        half = len(classes) // 2
        first = 0 if split == "retrieval_train" else half
        names = classes[:half] if first == 0 else classes[half:]
        items = [(p, c) for p, c in items if first <= c < first + len(names)]
    data = dataset.ImageDataset(
        name="folder", split=split or "all",
        paths=[os.path.join(root, p) for p, _ in items],
        labels=[c - first for _, c in items],
        boxes=[table.get(p, []) for p, _ in items], class_names=names,
        image_size=image_size, resize=resize, source=boxes or root,
        box_file=boxes or default_boxes, mask_file=mask_file,
        masks=None if mask_table is None else [mask_table.get(p, ([], "")) for p, _ in items])
    return data.check(check, skip_bad_images)
