"""Bad inputs, images: what `bin/visualize` does with every kind of image
file (missing, empty, corrupt, truncated, a folder, every bit depth and
mode, an extreme aspect ratio), and `bin/evaluate --dataset=folder` with
missing ground truth.

Each row has a verdict: "refused" (non-zero exit, one line naming the
file), "warned" (exit 0 and a "warning:" line), "works" (exit 0, the map
finite and of the expected shape). Rows with the same command line share
one run; every run leaves the input files as they were.
"""

import hashlib
import os
import re

import cv2
import numpy as np
import pytest
from PIL import Image

from bad_input_harness import Case, run_cases, save_tiny_classifier
from tfcaf import render
from tfcaf.data import DataError, load_dataset, read_image
from tfcaf.data.checks import require_boxes

SIZE = 24                     # the tiny model's input, px
MAP = (SIZE // 2, SIZE // 2)  # its split layer's (h, w)
H, W = 30, 40                 # the planted images' stored size, px


def _rng(seed):
    return np.random.default_rng(seed)


def _u8(seed, shape=(H, W, 3)):
    return _rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _u16(seed, shape=(H, W, 3)):
    return _rng(seed).integers(0, 65536, shape, dtype=np.uint16)


def _jpeg_with_orientation(path):
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(_u8(20)).save(path, quality=90, exif=exif)


def _truncated(path, make):
    make(path)
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])


# name -> writer of the image file at the path it is given
IMAGES = {
    "rgb8.png": lambda p: cv2.imwrite(p, _u8(0)),
    "grey16.png": lambda p: cv2.imwrite(p, _u16(1, (H, W))),
    "rgb16.png": lambda p: cv2.imwrite(p, _u16(2)),
    "rgba16.png": lambda p: cv2.imwrite(p, _u16(3, (H, W, 4))),
    "rgba8.png": lambda p: Image.fromarray(_u8(4, (H, W, 4)), "RGBA").save(p),
    "grey_alpha.png": lambda p: Image.fromarray(_u8(5, (H, W, 2)), "LA").save(p),
    "palette.png": lambda p: Image.fromarray(_u8(6)).convert("P").save(p),
    "palette_t.png": lambda p: Image.fromarray(_u8(7)).convert("P").save(p, transparency=0),
    "cmyk.jpg": lambda p: Image.fromarray(_u8(8, (H, W, 4)), "CMYK").save(p),
    "one_bit.png": lambda p: Image.fromarray(_u8(9, (H, W)) > 127).save(p),
    "tiff16.tif": lambda p: Image.fromarray(_u16(10, (H, W))).save(p),
    "float.tif": lambda p: Image.fromarray(
        _rng(11).uniform(0, 255, (H, W)).astype(np.float32)).save(p),
    "int32.tif": lambda p: Image.fromarray(_u8(12, (H, W)).astype(np.int32)).save(p),
    "anim.gif": lambda p: Image.fromarray(_u8(13)).save(
        p, save_all=True, append_images=[Image.fromarray(_u8(14))]),
    "bitmap.bmp": lambda p: Image.fromarray(_u8(15)).save(p),
    "lossy.webp": lambda p: Image.fromarray(_u8(16)).save(p),
    # v * 257 is v on the 16-bit scale; a grey 16-bit PNG is what PIL's
    # convert("RGB") binarised to {0, 255}.
    "e8.png": lambda p: cv2.imwrite(p, _u8(17, (H, W))),
    "e16.png": lambda p: cv2.imwrite(p, _u8(17, (H, W)).astype(np.uint16) * 257),
    "rotated.jpg": _jpeg_with_orientation,
    "strip.png": lambda p: cv2.imwrite(p, _u8(18, (2000, 20, 3))),
    "empty.png": lambda p: open(p, "wb").close(),
    "corrupt.jpg": lambda p: open(p, "wb").write(bytes(_u8(19, (999,)))),
    "cut.jpg": lambda p: _truncated(p, lambda q: Image.fromarray(_u8(21)).save(q, quality=95)),
    "cut.png": lambda p: _truncated(p, lambda q: cv2.imwrite(q, _u8(22))),
    "big_int.tif": lambda p: Image.fromarray(_u16(23, (H, W)).astype(np.int32) + 256).save(p),
    "nan.tif": lambda p: Image.fromarray(np.full((H, W), np.nan, np.float32)).save(p),
}
MODES = ["rgb8.png", "grey16.png", "rgb16.png", "rgba16.png", "rgba8.png", "grey_alpha.png",
         "palette.png", "palette_t.png", "cmyk.jpg", "one_bit.png", "tiff16.tif", "float.tif",
         "int32.tif", "anim.gif", "bitmap.bmp", "lossy.webp", "e8.png", "e16.png"]
# One run explains every mode and the strip, in one batch.
ALL_MODES = ["--images=" + ",".join(MODES + ["strip.png"]), "--out_dir=modes",
             "--iterations=30", "--batch_size=32"]


def _out(folder, *names):
    return [os.path.join(folder, n) for n in names]


def _map_ok(path):
    """The .npy map is finite, unit-L2 (|f| / ||f||) and of the split layer's shape."""
    raw = np.load(path)
    return raw.shape == MAP and np.isfinite(raw).all() and abs(np.sqrt((raw ** 2).sum()) - 1) < 1e-5


def _maps_equal(a, b):
    return np.allclose(np.load(a), np.load(b), rtol=0, atol=1e-6)


def _no_output(folder):
    return lambda d: not any(f.endswith((".png", ".npy", ".gif"))
                             for _, _, files in os.walk(d / folder) for f in files)


def _picture_size(path, expected_hw):
    return cv2.imread(str(path)).shape[:2] == expected_hw


# The 20 x 2000 strip is shown at 15 x 1536 (the side cap wins over the
# short side's 384 px minimum): a 40 px title strip above, three panels,
# two 8 px gaps and a 74 px colour bar.
STRIP_PICTURE = (40 + 1536, 3 * 15 + 2 * 8 + 74)

# (row, verdict, argv, expected status, regex the error/warning line
#  matches, check of the files afterwards: f(workdir) -> bool)
VISUALIZE_ROWS = [
    ("missing image", "refused", ["--images=nope.png", "--out_dir=o1"], 1,
     r"image 'nope.png' does not exist", _no_output("o1")),
    ("empty file", "refused", ["--images=empty.png", "--out_dir=o2"], 1,
     r"unreadable image empty.png", _no_output("o2")),
    ("corrupt jpeg", "refused", ["--images=corrupt.jpg", "--out_dir=o3"], 1,
     r"unreadable image corrupt.jpg", _no_output("o3")),
    ("truncated jpeg", "refused", ["--images=cut.jpg", "--out_dir=o4"], 1,
     r"truncated image: cut.jpg", _no_output("o4")),
    ("truncated png", "refused", ["--images=cut.png", "--out_dir=o5"], 1,
     r"truncated image: cut.png", _no_output("o5")),
    ("folder of images", "works", ["--images=photos", "--out_dir=o6"], 0,
     None, lambda d: sorted(f for f in os.listdir(d / "o6") if not f.startswith(".")) ==
     ["in.npy", "in.png"]),
    ("folder without images", "refused", ["--images=notes", "--out_dir=o6b"], 1,
     r"--images: folder 'notes' holds no image files \(\.jpg, \.jpeg, \.png, \.bmp, \.gif\)",
     _no_output("o6b")),
    ("32-bit integer tiff above 255", "refused", ["--images=big_int.tif", "--out_dir=o7"], 1,
     r"image big_int.tif \(mode I, 32-bit integer\) has values in \[\d+, \d+\], outside "
     r"\[0, 255\]: its scale is unknown", _no_output("o7")),
    ("float tiff of nan", "refused", ["--images=nan.tif", "--out_dir=o8"], 1,
     r"image nan.tif \(mode F\) has non-finite values", _no_output("o8")),
    ("exif-rotated jpeg", "warned", ["--images=rotated.jpg", "--out_dir=o9", "--iterations=30"],
     0, r"^warning: rotated.jpg has EXIF orientation 6 \(viewers show it rotated 90°\): read "
     r"as stored", lambda d: _map_ok(d / "o9" / "rotated.npy")),
    ("20x2000 strip", "works", ALL_MODES, 0, None,
     lambda d: _map_ok(d / "modes" / "strip.npy")
     and _picture_size(d / "modes" / "strip.png", STRIP_PICTURE)),
] + [
    (f"mode {name}", "works", ALL_MODES, 0, None,
     lambda d, stem=os.path.splitext(name)[0]: _map_ok(d / "modes" / f"{stem}.npy")
     and (d / "modes" / f"{stem}.png").stat().st_size > 0)
    for name in MODES
] + [
    ("16-bit png gives its 8-bit version's map", "works", ALL_MODES, 0, None,
     lambda d: _maps_equal(d / "modes" / "e8.npy", d / "modes" / "e16.npy")),
]

CLASSES = ("a", "b", "c")


def _write_folder_set(root):
    """root/test/{a,b,c}/k.png: 2 images per class of the tiny model's 3."""
    for c, name in enumerate(CLASSES):
        os.makedirs(os.path.join(root, "test", name))
        for k in range(2):
            cv2.imwrite(os.path.join(root, "test", name, f"{k}.png"), _u8(30 + 2 * c + k))


def _boxes_csv(root, rows):
    with open(os.path.join(root, "test", "boxes.csv"), "w") as f:
        f.write("path,x_min,y_min,x_max,y_max\n" + "".join(r + "\n" for r in rows))


def _evaluate(data_dir, out_dir, metric):
    return ["--dataset=folder", f"--data_dir={data_dir}", f"--metric={metric}", "--methods=cam",
            f"--out_dir={out_dir}", "--max_images=6"]


EVALUATE_ROWS = [
    ("folder without boxes.csv, iou", "refused", _evaluate("set", "e1", "iou"), 1,
     r"--metric=iou needs boxes: set/test/boxes.csv does not exist", _no_output("e1")),
    ("folder without boxes.csv, maxboxacc and pointing game", "refused",
     _evaluate("set", "e2", "maxboxacc,pointing_game"), 1,
     r"--metric=maxboxacc,pointing_game needs boxes: set/test/boxes.csv does not exist",
     _no_output("e2")),
    ("boxes.csv with a header only", "refused", _evaluate("headeronly", "e3", "iou"), 1,
     r"--metric=iou needs boxes: none of the 6 images of folder/test has a box in "
     r"headeronly/test/boxes.csv", _no_output("e3")),
    ("boxes for some images only", "warned", _evaluate("partial", "e4", "iou"), 0,
     r"^warning: 4 of 6 images of folder/test have no box in partial/test/boxes.csv: "
     r"--metric=iou counts them as misses",
     lambda d: (d / "e4" / "metrics.json").is_file()),
    ("boxes for every image", "works", _evaluate("boxed", "e5", "iou,maxboxacc"), 0,
     None, lambda d: (d / "e5" / "metrics.json").is_file()),
]


INPUTS = set(IMAGES) | {"photos", "notes", "set", "headeronly", "partial", "boxed"}


def _digests(folder):
    """sha256 of every input file (the images and the folder datasets)."""
    return {p: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob("*") if p.is_file() and p.relative_to(folder).parts[0] in INPUTS}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    path = tmp_path_factory.mktemp("bad_images")
    save_tiny_classifier(str(path / "tiny.keras"))
    for name, write in IMAGES.items():
        write(str(path / name))
    (path / "photos").mkdir()
    cv2.imwrite(str(path / "photos" / "in.png"), _u8(40))
    (path / "notes").mkdir()
    (path / "notes" / "readme.txt").write_text("no image here")
    for root in ("set", "headeronly", "partial", "boxed"):
        _write_folder_set(str(path / root))
    _boxes_csv(str(path / "headeronly"), [])
    _boxes_csv(str(path / "partial"), ["a/0.png,2,3,20,25", "b/1.png,0,0,40,30"])
    _boxes_csv(str(path / "boxed"), [f"{c}/{k}.png,2,3,20,25" for c in CLASSES for k in (0, 1)])
    return path


def _run_rows(workdir, binary, rows, extra):
    before = _digests(workdir)
    argvs = {tuple(argv) for _, _, argv, *_ in rows}
    cases = [Case(f"case {k}", extra + list(argv)) for k, argv in enumerate(sorted(argvs))]
    outcomes = run_cases(binary, cases, cwd=str(workdir))
    by_argv = {tuple(c.argv[len(extra):]): outcomes[c.name] for c in cases}
    return {row[0]: by_argv[tuple(row[2])] for row in rows}, before == _digests(workdir)


@pytest.fixture(scope="module")
def visualize_outcomes(workdir):
    return _run_rows(workdir, "visualize", VISUALIZE_ROWS, ["--model=tiny.keras"])


@pytest.fixture(scope="module")
def evaluate_outcomes(workdir, visualize_outcomes):
    # After visualize: its runs must not touch the evaluate rows' sets either.
    return _run_rows(workdir, "evaluate", EVALUATE_ROWS, ["--model=tiny.keras"])


def _check_row(binary, outcomes, workdir, row):
    name, verdict, _, status, pattern, files_ok = row
    results, inputs_unchanged = outcomes
    outcome = results[name]
    assert inputs_unchanged, "a run changed an input file"
    assert outcome.status == status, outcome.stderr
    assert "Traceback" not in outcome.stderr, outcome.stderr
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    if verdict == "refused":
        assert re.search(pattern, outcome.last_line), outcome.stderr
        assert outcome.last_line.startswith(f"{binary}: error: "), outcome.stderr
    elif verdict == "warned":
        assert any(re.search(pattern, line) for line in lines), outcome.stderr
    else:
        assert not any(re.search(r"error|warning", line, re.I) for line in lines), outcome.stderr
    assert files_ok(workdir), f"files after {name!r}"


@pytest.mark.parametrize("row", VISUALIZE_ROWS, ids=[r[0] for r in VISUALIZE_ROWS])
def test_visualize(visualize_outcomes, workdir, row):
    _check_row("visualize", visualize_outcomes, workdir, row)


@pytest.mark.parametrize("row", EVALUATE_ROWS, ids=[r[0] for r in EVALUATE_ROWS])
def test_evaluate(evaluate_outcomes, workdir, row):
    _check_row("evaluate", evaluate_outcomes, workdir, row)


def _sixteen_bits_are_read(d):
    grey = _u8(17, (H, W)).astype(np.float32)
    np.testing.assert_array_equal(read_image(str(d / "e16.png")), np.stack([grey] * 3, axis=2))


def _strip_display_size(d):
    assert render.display_size(1, 100000) == (1, render.MAX_SIDE)


# (row, verdict, call(workdir), error class, regex)
LIBRARY_ROWS = [
    ("read_image of a float tiff of nan", "refused",
     lambda d: read_image(str(d / "nan.tif")), DataError, r"nan.tif \(mode F\) has non-finite"),
    ("read_image of a 16-bit png", "works", _sixteen_bits_are_read, None, None),
    ("require_boxes of a folder without boxes.csv", "refused",
     lambda d: require_boxes(load_dataset("folder", str(d / "set"), "test"), "--metric=iou"),
     DataError, r"--metric=iou needs boxes: .*set/test/boxes.csv does not exist"),
    ("display size of a 1 x 100000 strip", "works", _strip_display_size, None, None),
]


@pytest.mark.parametrize("name,verdict,call,kind,pattern", LIBRARY_ROWS,
                         ids=[r[0] for r in LIBRARY_ROWS])
def test_library(workdir, name, verdict, call, kind, pattern):
    if verdict == "refused":
        with pytest.raises(kind, match=pattern):
            call(workdir)
    else:
        call(workdir)
