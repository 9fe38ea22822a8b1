"""ImageNet (ILSVRC2012) localization data.

Class ids follow `keras.applications` (the order of
`imagenet_class_index.json`, which is the sorted list of the 1,000 wnids).
The wnid list is taken, first found, from: the `synsets` argument; in
`data_dir`, `LOC_synset_mapping.txt`, `synsets.txt` (one "wnid [names]"
per line) or `imagenet_class_index.json`; the copy Keras keeps in
`$KERAS_HOME/models/` (`~/.keras/models/`) once it has downloaded it
(nothing is downloaded here); the sorted class folders of the training
images. Text lists are sorted, so any file holding the 1,000 wnids gives
the Keras order; a subset gives ids in sorted order of that subset.

Layout, first found under `data_dir` unless given:
    validation images: ILSVRC/Data/CLS-LOC/val, val, ILSVRC2012_img_val
        (flat or in class sub-folders);
    validation boxes: LOC_val_solution.csv (Kaggle: "ImageId,
        PredictionString" with "wnid x_min y_min x_max y_max" repeated),
        or a folder of per-image XML files (PASCAL VOC style, as in
        ILSVRC/Annotations/CLS-LOC/val or ILSVRC2012_bbox_val_v3/val);
    training images: ILSVRC/Data/CLS-LOC/train or train, one folder per
        wnid; boxes from LOC_train_solution.csv when present (most
        training images have none).
The listed images are those found in the image folder; each validation
image needs an annotation. Box values are used as given (pixels; the
one-pixel ambiguity of their right edge is within `checks.BOX_TOLERANCE`).
"""

import csv
import json
import logging
import os
import xml.etree.ElementTree as ElementTree


from tfcaf.data import checks, dataset
from tfcaf.errors import TfcafError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png")
VAL_IMAGES = ("ILSVRC/Data/CLS-LOC/val", "val", "ILSVRC2012_img_val")
VAL_BOXES = ("LOC_val_solution.csv", "ILSVRC/Annotations/CLS-LOC/val",
             "ILSVRC2012_bbox_val_v3/val")
TRAIN_IMAGES = ("ILSVRC/Data/CLS-LOC/train", "train")
TRAIN_BOXES = ("LOC_train_solution.csv",)
SYNSET_FILES = ("LOC_synset_mapping.txt", "synsets.txt",
                "imagenet_class_index.json")


def _first(data_dir, candidates, what):
    for candidate in candidates:
        path = os.path.join(data_dir, candidate)
        if os.path.exists(path):
            return path
    raise checks.DataError(f"no {what} in {data_dir}: looked for "
                           + ", ".join(candidates))


def _read_synsets(path):
    """(wnids, names) in Keras order from a synset text or JSON file."""
    checks.require_file(path, "ImageNet synset file")
    if path.endswith(".json"):
        with open(path) as f:
            index = json.load(f)
        entries = [index[str(i)] for i in range(len(index))]
        return [w for w, _ in entries], [n for _, n in entries]
    pairs = []
    with open(path) as f:
        for line in f:
            fields = line.strip().split(None, 1)
            if fields:
                name = fields[1].split(",")[0].strip() if len(fields) > 1 \
                    else fields[0]
                pairs.append((fields[0], name))
    pairs.sort()
    return [w for w, _ in pairs], [n for _, n in pairs]


def class_index(data_dir, synsets=None, train_dir=None):
    """(wnids, names) in Keras class-id order; see the module docstring."""
    keras_home = os.environ.get("KERAS_HOME") or os.path.join(
        os.path.expanduser("~"), ".keras")
    candidates = [synsets] if synsets else []
    candidates += [os.path.join(data_dir, f) for f in SYNSET_FILES]
    candidates.append(os.path.join(keras_home, "models",
                                   "imagenet_class_index.json"))
    for path in candidates:
        if os.path.isfile(path) or path == synsets:
            wnids, names = _read_synsets(path)
            break
    else:
        if not train_dir or not os.path.isdir(train_dir):
            raise checks.DataError(
                f"no ImageNet class list: give synsets=<LOC_synset_mapping"
                f".txt> or put one of {SYNSET_FILES} in {data_dir}")
        wnids = sorted(e.name for e in os.scandir(train_dir) if e.is_dir())
        names, path = list(wnids), train_dir
    if len(wnids) != 1000:
        log.warning("%d ImageNet classes from %s: class ids will not match "
                    "the 1,000 outputs of keras.applications models",
                    len(wnids), path)
    return wnids, names


def _scan_images(folder):
    """{file stem: path} of the images under `folder` (any depth)."""
    found = {}
    for parent, _, files in os.walk(folder):
        for name in files:
            stem, extension = os.path.splitext(name)
            if extension.lower() in IMAGE_EXTENSIONS:
                found[stem] = os.path.join(parent, name)
    return found


def _read_solution(path):
    """{image id: [(wnid, [x_min, y_min, x_max, y_max]), ...]} of a Kaggle
    LOC_*_solution.csv file."""
    checks.require_file(path, "ImageNet box file")
    annotations = {}
    with open(path, newline="") as f:
        reader = csv.reader(f)
        if next(reader, None) != ["ImageId", "PredictionString"]:
            raise checks.DataError(
                f"{path}: header is not 'ImageId,PredictionString'")
        for number, row in enumerate(reader, 2):
            fields = row[1].split() if len(row) == 2 else []
            if not fields or len(fields) % 5:
                raise checks.DataError(f"{path}:{number}: malformed row {row}")
            try:
                annotations[row[0]] = [
                    (fields[i], [float(v) for v in fields[i + 1:i + 5]])
                    for i in range(0, len(fields), 5)]
            except ValueError as error:
                raise checks.DataError(
                    f"{path}:{number}: malformed row {row}") from error
    return annotations


def _read_xml(path):
    """[(wnid, [x_min, y_min, x_max, y_max]), ...] of a VOC-style XML file."""
    checks.require_file(path, "ImageNet annotation file")
    try:
        objects = ElementTree.parse(path).getroot().findall("object")
        return [(o.findtext("name").strip(), [
            float(o.find("bndbox").findtext(k))
            for k in ("xmin", "ymin", "xmax", "ymax")]) for o in objects]
    except (ElementTree.ParseError, AttributeError, TypeError,
            ValueError) as error:
        raise checks.DataError(f"malformed annotation file {path}: {error}") \
            from error


def _val_objects(images, boxes):
    """Yields (stem, objects, source) for each image (sorted by stem), with
    a DataError instead of objects when its annotation is missing or
    malformed. `boxes` is a LOC_val_solution.csv file or an XML folder."""
    if os.path.isfile(boxes):
        table = _read_solution(boxes)
        for stem in sorted(images):
            objects = table.get(stem) or checks.DataError(
                f"image {images[stem]} has no row in {boxes}")
            yield stem, objects, boxes
        return
    if not os.path.isdir(boxes):
        raise checks.DataError(f"missing ImageNet box file or folder: {boxes}")
    for stem in sorted(images):
        xml = os.path.join(boxes, stem + ".xml")
        try:
            yield stem, _read_xml(xml), xml
        except checks.DataError as error:
            yield stem, error, xml


def _reject(error, skip_bad_images):
    if not skip_bad_images:
        raise error
    log.warning("skipping bad example: %s", error)


def _val_examples(images, boxes, ids, skip_bad_images):
    """paths, labels, boxes of the validation images; the label is the
    first object's class, and only boxes of that class are kept."""
    paths, labels, all_boxes = [], [], []
    for stem, objects, source in _val_objects(images, boxes):
        if isinstance(objects, checks.DataError):
            _reject(objects, skip_bad_images)
            continue
        wnid = objects[0][0] if objects else None
        if wnid not in ids:
            problem = (f"class {wnid!r}, absent from the class list"
                       if objects else "no object")
            _reject(checks.DataError(f"{source}: image {stem} has {problem}"),
                    skip_bad_images)
            continue
        paths.append(images[stem])
        labels.append(ids[wnid])
        all_boxes.append([b for w, b in objects if w == wnid])
    return paths, labels, all_boxes


def _train_examples(train_dir, boxes, ids):
    """paths, labels, boxes of the training images (class from folder)."""
    table = _read_solution(boxes) if boxes and os.path.isfile(boxes) else {}
    paths, labels, all_boxes = [], [], []
    for wnid in sorted(e.name for e in os.scandir(train_dir) if e.is_dir()):
        if wnid not in ids:
            raise checks.DataError(f"class folder {train_dir}/{wnid} is not "
                                   "in the class list")
        images = _scan_images(os.path.join(train_dir, wnid))
        for stem in sorted(images):
            paths.append(images[stem])
            labels.append(ids[wnid])
            all_boxes.append([b for w, b in table.get(stem, []) if w == wnid])
    return paths, labels, all_boxes


def load_imagenet(data_dir, split="val", *, images_dir=None, boxes=None,
                  synsets=None, image_size=224, resize="resize", check=None,
                  skip_bad_images=False):
    """ImageNet split "val" or "train" as an `ImageDataset`.

    Args:
        data_dir: ImageNet root (see the module docstring for the layout).
        images_dir: the split's image folder (default: first found).
        boxes: LOC_*_solution.csv file or XML folder (default: first found;
            required for "val", optional for "train").
        synsets: wnid list file (default: see the module docstring).
        check: as in `load_dataset`; default "header" for val, "exists" for
            train (1.28 M files: reading every header takes minutes).
        image_size, resize, skip_bad_images: see `load_dataset`.
    """
    if split not in ("val", "train"):
        raise TfcafError(f"ImageNet split {split!r} not in ('val', 'train'): "
                         "test labels are not public, use 'val'")
    train_dir = images_dir if split == "train" and images_dir else next(
        (os.path.join(data_dir, d) for d in TRAIN_IMAGES
         if os.path.isdir(os.path.join(data_dir, d))), None)
    wnids, names = class_index(data_dir, synsets, train_dir)
    ids = {wnid: i for i, wnid in enumerate(wnids)}
    if split == "val":
        folder = images_dir or _first(data_dir, VAL_IMAGES,
                                      "validation image folder")
        boxes = boxes or _first(data_dir, VAL_BOXES, "validation boxes")
        images = _scan_images(folder)
        if not images:
            raise checks.DataError(f"no images in {folder}")
        paths, labels, all_boxes = _val_examples(images, boxes, ids,
                                                 skip_bad_images)
        source = boxes
    else:
        if train_dir is None:
            raise checks.DataError(f"no training image folder in {data_dir}: "
                                   "looked for " + ", ".join(TRAIN_IMAGES))
        boxes = boxes or next((os.path.join(data_dir, b) for b in TRAIN_BOXES
                               if os.path.isfile(os.path.join(data_dir, b))),
                              None)
        paths, labels, all_boxes = _train_examples(train_dir, boxes, ids)
        source = train_dir
    data = dataset.ImageDataset(
        name="imagenet", split=split, paths=paths, labels=labels,
        boxes=all_boxes, class_names=names, image_size=image_size,
        resize=resize, source=source)
    default_check = "header" if split == "val" else "exists"
    return data.check(check or default_check, skip_bad_images)
