"""CUB-200-2011, ImageNet and folder layouts, from tiny generated trees whose
expected labels, splits and boxes are written out below; and the errors
that name the offending file."""

import json
import logging
import os

import numpy as np
import pytest
from PIL import Image

from tfcaf.data import DataError, load_dataset

# CUB: image id, class id, relative path, is_train, (x, y, w, h), (W, H),
# expected box (x, y, x + w, y + h).
CUB_CLASSES = ["001.Black_footed_Albatross", "002.Laysan_Albatross",
               "003.Sooty_Albatross", "004.Groove_billed_Ani"]
CUB = [
    (1, 1, "001.Black_footed_Albatross/a_1.jpg", 1, (3, 4, 20, 15), (40, 30),
     [3, 4, 23, 19]),
    (2, 1, "001.Black_footed_Albatross/a_2.jpg", 0, (0, 0, 50, 60), (50, 60),
     [0, 0, 50, 60]),
    (3, 2, "002.Laysan_Albatross/b_1.jpg", 1, (10.5, 2, 5, 7), (32, 32),
     [10.5, 2, 15.5, 9]),
    (4, 2, "002.Laysan_Albatross/b_2.jpg", 0, (1, 1, 30, 20), (48, 24),
     [1, 1, 31, 21]),
    (5, 3, "003.Sooty_Albatross/c_1.jpg", 1, (5, 5, 10, 10), (20, 40),
     [5, 5, 15, 15]),
    (6, 4, "004.Groove_billed_Ani/d_1.jpg", 0, (2, 3, 4, 5), (30, 20),
     [2, 3, 6, 8]),
]


def _image(path, size, seed=0):
    """A random RGB image of size (W, H) saved at `path` (format from the
    extension)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3))
    Image.fromarray(pixels.astype(np.uint8)).save(path)


def _write_lines(path, lines):
    with open(path, "w") as f:
        f.write("".join(line + "\n" for line in lines))


def write_cub(root):
    """The CUB tree of `CUB` under root/CUB_200_2011; returns root."""
    base = os.path.join(root, "CUB_200_2011")
    for image_id, _, name, _, _, size, _ in CUB:
        _image(os.path.join(base, "images", name), size, image_id)
    _write_lines(os.path.join(base, "images.txt"),
                 [f"{i} {name}" for i, _, name, *_ in CUB])
    _write_lines(os.path.join(base, "image_class_labels.txt"),
                 [f"{i} {c}" for i, c, *_ in CUB])
    _write_lines(os.path.join(base, "train_test_split.txt"),
                 [f"{i} {t}" for i, _, _, t, *_ in CUB])
    _write_lines(os.path.join(base, "bounding_boxes.txt"),
                 [f"{i} " + " ".join(f"{v:.1f}" for v in box)
                  for i, _, _, _, box, *_ in CUB])
    _write_lines(os.path.join(base, "classes.txt"),
                 [f"{i + 1} {name}" for i, name in enumerate(CUB_CLASSES)])
    return str(root)


def test_cub_labels_splits_and_boxes(tmp_path):
    root = write_cub(tmp_path)
    train = load_dataset("cub", root, "train")
    test = load_dataset("cub", str(tmp_path / "CUB_200_2011"), "test")
    assert [p.split("images/")[1] for p in train.paths] == [
        CUB[0][2], CUB[2][2], CUB[4][2]]
    np.testing.assert_array_equal(train.labels, [0, 1, 2])
    np.testing.assert_array_equal(test.labels, [0, 1, 3])
    np.testing.assert_allclose(np.concatenate(train.boxes),
                               [CUB[0][6], CUB[2][6], CUB[4][6]])
    np.testing.assert_allclose(np.concatenate(test.boxes),
                               [CUB[1][6], CUB[3][6], CUB[5][6]])
    assert train.class_names == ["Black_footed_Albatross", "Laysan_Albatross",
                                 "Sooty_Albatross", "Groove_billed_Ani"]
    # Image 1 (40 x 30) resized to 32 x 32: x * 0.8, y * 32 / 30.
    _, labels, boxes = next(iter(train.pipeline(3, image_size=32)))
    np.testing.assert_allclose(boxes[0, 0], [2.4, 4 * 32 / 30, 18.4,
                                             19 * 32 / 30], rtol=1e-5)
    np.testing.assert_array_equal(labels, [0, 1, 2])


def test_cub_retrieval_halves_of_the_classes(tmp_path):
    root = write_cub(tmp_path)
    first = load_dataset("cub", root, "retrieval_train")
    second = load_dataset("cub", root, "retrieval_test")
    np.testing.assert_array_equal(first.labels, [0, 0, 1, 1])
    np.testing.assert_array_equal(second.labels, [0, 1])
    assert second.class_names == ["Sooty_Albatross", "Groove_billed_Ani"]
    assert second.paths[1].endswith(CUB[5][2])
    with pytest.raises(ValueError, match="no validation split"):
        load_dataset("cub", root, "val")


# ImageNet: synsets listed unsorted; Keras ids follow the sorted wnids.
SYNSETS = ["n01484850 great white shark, white shark",
           "n01440764 tench, Tinca tinca", "n01443537 goldfish, Carassius"]
# image id, (W, H), [(wnid, box)], expected label
VAL = [
    ("ILSVRC2012_val_00000001", (60, 40),
     [("n01484850", [5, 6, 50, 38]), ("n01484850", [0, 0, 10, 10])], 2),
    ("ILSVRC2012_val_00000002", (30, 30), [("n01440764", [1, 2, 29, 30])], 0),
    ("ILSVRC2012_val_00000003", (40, 50), [("n01443537", [10, 10, 20, 45])], 1),
]


def _voc_xml(image_id, size, objects):
    parts = [f"<annotation><folder>val</folder><filename>{image_id}"
             f"</filename><size><width>{size[0]}</width><height>{size[1]}"
             "</height><depth>3</depth></size>"]
    for wnid, (x0, y0, x1, y1) in objects:
        parts.append(f"<object><name>{wnid}</name><pose>Unspecified</pose>"
                     f"<bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}"
                     f"</xmax><ymax>{y1}</ymax></bndbox></object>")
    return "".join(parts) + "</annotation>\n"


def write_imagenet(root):
    """Kaggle layout: images, per-image XML and LOC_val_solution.csv."""
    images = os.path.join(root, "ILSVRC", "Data", "CLS-LOC", "val")
    xml = os.path.join(root, "ILSVRC", "Annotations", "CLS-LOC", "val")
    os.makedirs(xml)
    rows = ["ImageId,PredictionString"]
    for n, (image_id, size, objects, _) in enumerate(VAL):
        _image(os.path.join(images, image_id + ".JPEG"), size, n)
        with open(os.path.join(xml, image_id + ".xml"), "w") as f:
            f.write(_voc_xml(image_id, size, objects))
        rows.append(image_id + "," + " ".join(
            f"{w} {' '.join(map(str, b))}" for w, b in objects) + " ")
    _write_lines(os.path.join(root, "LOC_val_solution.csv"), rows)
    _write_lines(os.path.join(root, "LOC_synset_mapping.txt"), SYNSETS)
    return str(root)


@pytest.mark.parametrize("boxes", ["LOC_val_solution.csv",
                                   "ILSVRC/Annotations/CLS-LOC/val"])
def test_imagenet_val_from_csv_or_xml(tmp_path, boxes):
    root = write_imagenet(tmp_path)
    val = load_dataset("imagenet", root, "val",
                       boxes=os.path.join(root, boxes))
    assert [os.path.basename(p) for p in val.paths] == [
        v[0] + ".JPEG" for v in VAL]
    np.testing.assert_array_equal(val.labels, [v[3] for v in VAL])
    for got, (_, _, objects, _) in zip(val.boxes, VAL):
        np.testing.assert_allclose(got, [b for _, b in objects])
    assert val.class_names == ["tench", "goldfish", "great white shark"]


def test_imagenet_class_index_json_and_sorted_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "no_keras_cache"))
    root = write_imagenet(tmp_path / "a")
    os.remove(os.path.join(root, "LOC_synset_mapping.txt"))
    index = {"0": ["n01440764", "tench"], "1": ["n01443537", "goldfish"],
             "2": ["n01484850", "great_white_shark"]}
    with open(os.path.join(root, "imagenet_class_index.json"), "w") as f:
        json.dump(index, f)
    val = load_dataset("imagenet", root)  # default split "val"
    np.testing.assert_array_equal(val.labels, [2, 0, 1])
    assert val.class_names[2] == "great_white_shark"
    os.remove(os.path.join(root, "imagenet_class_index.json"))
    for n, wnid in enumerate(["n01484850", "n01440764", "n01443537"]):
        _image(os.path.join(root, "train", wnid, f"{wnid}_{n}.JPEG"),
               (20, 20), n)
    _write_lines(os.path.join(root, "LOC_train_solution.csv"), [
        "ImageId,PredictionString", "n01440764_1,n01440764 2 3 12 14 "])
    train = load_dataset("imagenet", root, "train")
    np.testing.assert_array_equal(train.labels, [0, 1, 2])  # sorted wnids
    assert [len(b) for b in train.boxes] == [1, 0, 0]
    np.testing.assert_allclose(train.boxes[0], [[2, 3, 12, 14]])
    np.testing.assert_array_equal(load_dataset("imagenet", root).labels,
                                  [2, 0, 1])


def write_folder(root):
    """train/ with classes dog (2 images) and cat (1), and boxes.csv."""
    for n, name in enumerate(["dog/x.png", "dog/y.jpg", "cat/z.png"]):
        _image(os.path.join(root, "train", name), (30, 20), n)
    _write_lines(os.path.join(root, "train", "boxes.csv"), [
        "path,x_min,y_min,x_max,y_max", "dog/y.jpg,1,2,10,20",
        "cat/z.png,0,0,30,20", "dog/y.jpg,5,5,6,6"])
    return str(root)


def test_folder_classes_boxes_and_retrieval(tmp_path):
    root = write_folder(tmp_path)
    train = load_dataset("folder", root, "train")
    assert train.class_names == ["cat", "dog"]
    assert [p.split("train/")[1] for p in train.paths] == [
        "cat/z.png", "dog/x.png", "dog/y.jpg"]
    np.testing.assert_array_equal(train.labels, [0, 1, 1])
    assert [b.tolist() for b in train.boxes] == [
        [[0, 0, 30, 20]], [], [[1, 2, 10, 20], [5, 5, 6, 6]]]
    whole = load_dataset("folder", os.path.join(root, "train"))
    np.testing.assert_array_equal(whole.labels, [0, 1, 1])
    second = load_dataset("folder", os.path.join(root, "train"),
                          "retrieval_test")
    assert second.class_names == ["dog"] and list(second.labels) == [0, 0]
    with pytest.raises(DataError, match="val"):
        load_dataset("folder", root, "val")


# Errors that name the file.

def test_missing_annotation_file_is_named(tmp_path):
    root = write_cub(tmp_path)
    missing = os.path.join(root, "CUB_200_2011", "bounding_boxes.txt")
    os.remove(missing)
    with pytest.raises(DataError, match=f"missing .*{missing}"):
        load_dataset("cub", root)
    root = write_imagenet(tmp_path / "inet")
    xml = os.path.join(root, "ILSVRC", "Annotations", "CLS-LOC", "val",
                       VAL[1][0] + ".xml")
    os.remove(xml)
    with pytest.raises(DataError, match=xml):
        load_dataset("imagenet", root, boxes=os.path.dirname(xml))


def test_absent_image_raises_or_is_skipped_with_a_log(tmp_path, caplog):
    root = write_cub(tmp_path)
    absent = os.path.join(root, "CUB_200_2011", "images", CUB[2][2])
    os.remove(absent)
    with pytest.raises(DataError, match=f"absent: {absent}.*images.txt"):
        load_dataset("cub", root)
    with caplog.at_level(logging.WARNING):
        train = load_dataset("cub", root, skip_bad_images=True)
    assert absent in caplog.text
    np.testing.assert_array_equal(train.labels, [0, 2])
    np.testing.assert_allclose(np.concatenate(train.boxes),
                               [CUB[0][6], CUB[4][6]])


def test_folder_box_row_for_absent_image_is_named(tmp_path):
    root = write_folder(tmp_path)
    with open(os.path.join(root, "train", "boxes.csv"), "a") as f:
        f.write("cat/gone.png,0,0,1,1\n")
    with pytest.raises(DataError, match="cat/gone.png.*boxes.csv:5"):
        load_dataset("folder", root, "train")


@pytest.mark.parametrize("damage, message", [
    (lambda data: data[:len(data) // 2], "truncated image"),
    (lambda data: b"not an image at all", "unreadable image")])
def test_corrupt_image_is_named(tmp_path, caplog, damage, message):
    root = write_cub(tmp_path)
    victim = os.path.join(root, "CUB_200_2011", "images", CUB[0][2])
    with open(victim, "rb") as f:
        data = f.read()
    with open(victim, "wb") as f:
        f.write(damage(data))
    with pytest.raises(DataError, match=f"{message}.*{victim}"):
        load_dataset("cub", root)
    with pytest.raises(DataError, match=victim):
        load_dataset("cub", root, check="full")
    with caplog.at_level(logging.WARNING):
        train = load_dataset("cub", root, skip_bad_images=True)
    assert victim in caplog.text and len(train) == 2
    images, _, _ = next(iter(train.pipeline(2)))  # the rest still decodes
    assert images.shape == (2, 224, 224, 3)


def test_box_outside_image_is_named(tmp_path):
    root = write_cub(tmp_path)
    path = os.path.join(root, "CUB_200_2011", "bounding_boxes.txt")
    with open(path) as f:
        lines = f.read().splitlines()
    lines[4] = "5 5.0 5.0 10.0 40.0"  # image 5 is 20 x 40: y_max 45 > 40 + 1
    _write_lines(path, lines)
    victim = os.path.join(root, "CUB_200_2011", "images", CUB[4][2])
    with pytest.raises(DataError, match=f"outside image {victim} of size 20x40"):
        load_dataset("cub", root)
    lines[4] = "5 5.0 5.0 10.0 35.5"  # within the 1-pixel tolerance: clipped
    _write_lines(path, lines)
    np.testing.assert_allclose(load_dataset("cub", root).boxes[2],
                               [[5, 5, 15, 40]])


def test_malformed_line_is_named_with_its_number(tmp_path):
    root = write_cub(tmp_path)
    path = os.path.join(root, "CUB_200_2011", "train_test_split.txt")
    _write_lines(path, ["1 1", "2 zero"])
    with pytest.raises(DataError, match=f"{path}:2: malformed"):
        load_dataset("cub", root)
