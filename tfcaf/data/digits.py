"""The embedded default dataset: cluttered digits.

Each canvas (default 96x96 RGB, uint8) holds one of the 1,797 real 8x8
handwritten digits that scikit-learn ships (`sklearn.datasets.load_digits`,
no download), upscaled to 40-72 pixels at a random position, in a random
ink colour on a random dark background. Clutter is 2-5 fragments of
digits of OTHER classes (windows of 3-5 x 3-5 source pixels, 10-20 pixels
long on the canvas, fainter), never closer than 2 pixels to the digit's box
nor touching each other, and uniform grey pixel noise of +-8. So the digit
is the largest, most salient object and its box (tight around its ink:
pixels where the upscaled digit reaches 35% of full ink) is the
localization target; those ink pixels are its ground-truth mask (PxAP).

Splits are by source digit, per class 60/20/20 % train/val/test; every
source digit is drawn `copies` times (4/2/2) with independent placement and
clutter, whose fragments come from the same split. The retrieval splits
take all canvases of classes 0-4 (retrieval_train) and 5-9
(retrieval_test), class ids renumbered from 0.

The set is generated once into `<data_dir>/digits-<hash>/` (hash of the
parameters and generator version; data_dir defaults to
`$XDG_CACHE_HOME/tfcaf` or `~/.cache/tfcaf`): PNG files under `images/`,
their masks under `masks/`, and `annotations.json`, which records the
parameters and seed. The folder
is built under a temporary name and renamed into place when complete.
"""

import dataclasses
import hashlib
import json
import logging
import os
import random
import shutil
import tempfile

import cv2
import numpy as np

from tfcaf.data import checks, dataset, transforms
from tfcaf.errors import TfcafError

log = logging.getLogger(__name__)

VERSION = 2
"""Generator version, part of the cache hash: bump it when the rendering
changes so that old caches are not mistaken for new ones."""
SPLITS = ("train", "val", "test")
INK_THRESHOLD = 0.35
"""Upscaled ink (fraction of the 0-16 source scale) below which a digit
pixel is left out: it makes the digit's box tight around visible ink."""
BOX_MARGIN = 2
"""Pixels kept free of clutter around the digit's box."""


@dataclasses.dataclass(frozen=True)
class DigitsConfig:
    """Parameters of the cluttered-digits set (sizes in canvas pixels)."""
    canvas_size: int = 96
    seed: int = 0
    split_fractions: tuple = (0.6, 0.2, 0.2)
    copies: tuple = (4, 2, 2)
    digit_size: tuple = (40, 72)
    fragments: tuple = (2, 5)
    fragment_size: tuple = (10, 20)
    noise: int = 8
    colour: bool = True

    def key(self):
        """Hex digest identifying these parameters and the generator."""
        text = json.dumps([VERSION, dataclasses.asdict(self)], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def default_cache_dir():
    """`$XDG_CACHE_HOME/tfcaf`, else `~/.cache/tfcaf`."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tfcaf")


def split_sources(targets, config):
    """Source digit indices of each split: {split: sorted int array}.

    Every class's sources are shuffled (seeded) and cut by
    `config.split_fractions`, so no source digit is in two splits.
    """
    rng = np.random.default_rng(config.seed)
    parts = {split: [] for split in SPLITS}
    for label in range(10):
        members = rng.permutation(np.flatnonzero(targets == label))
        cuts = np.round(np.cumsum(config.split_fractions)[:2]
                        * len(members)).astype(int)
        for split, part in zip(SPLITS, np.split(members, cuts)):
            parts[split].append(part)
    return {s: np.sort(np.concatenate(p)) for s, p in parts.items()}


def _tight(alpha):
    """`alpha` cropped to its non-zero pixels."""
    rows = np.flatnonzero(alpha.any(axis=1))
    cols = np.flatnonzero(alpha.any(axis=0))
    return alpha[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def _upscale(pixels, height, width):
    """8x8-scale pixels (0-16) as alpha [0, 1] of (height, width)."""
    alpha = cv2.resize(pixels.astype(np.float32) / 16.0, (width, height),
                       interpolation=cv2.INTER_LINEAR)
    return np.clip(alpha, 0.0, 1.0)


def _colours(draw, config):
    """Background and ink RGB colours, at least 100 apart per channel."""
    channels = 3 if config.colour else 1
    background = np.array([draw.randint(0, 80) for _ in range(channels)])
    ink = np.array([draw.randint(180, 255) for _ in range(channels)])
    return background, ink


def _fragment(draw, images, pool, config):
    """Alpha (h, w) of a window of a random digit from `pool`, faint."""
    for _ in range(10):
        source = images[draw.choice(pool)]
        h, w = draw.randint(3, 5), draw.randint(3, 5)
        y, x = draw.randint(0, 8 - h), draw.randint(0, 8 - w)
        window = source[y:y + h, x:x + w]
        if window.max() >= 8:
            break
    longest = draw.randint(*config.fragment_size)
    scale = longest / max(h, w)
    alpha = _upscale(window, max(1, round(h * scale)), max(1, round(w * scale)))
    alpha *= draw.uniform(0.5, 0.9)
    alpha[alpha < 0.1] = 0.0
    return _tight(alpha) if alpha.any() else None


def _paint(canvas, alpha, top_left, ink):
    """Blends `ink` (3,) into `canvas` (3, S, S) with `alpha` (h, w)."""
    y, x = top_left
    h, w = alpha.shape
    region = canvas[:, y:y + h, x:x + w]
    region += alpha * (ink[:, None, None] - region)


def _apart(a, b, margin):
    """Whether boxes a and b (x_min, y_min, x_max, y_max) are more than
    `margin` pixels apart along some axis."""
    return (a[0] >= b[2] + margin or b[0] >= a[2] + margin
            or a[1] >= b[3] + margin or b[1] >= a[3] + margin)


def _free_place(draw, shape, guard, size, placed):
    """Random top-left (y, x) of a (h, w) patch on a canvas of `size`
    pixels, wholly left of, right of, above or below the `guard` box
    (x_min, y_min, x_max, y_max) and apart from the `placed` boxes (to
    which its box is added), so that clutter pieces never merge into an
    object as large as the digit. None when no place was found."""
    h, w = shape
    sides = [((0, size - h), (0, guard[0] - w)),
             ((0, size - h), (guard[2], size - w)),
             ((0, guard[1] - h), (0, size - w)),
             ((guard[3], size - h), (0, size - w))]
    sides = [(ys, xs) for ys, xs in sides
             if max(ys[0], 0) <= ys[1] and max(xs[0], 0) <= xs[1]]
    for _ in range(5 if sides else 0):
        ys, xs = draw.choice(sides)
        y = draw.randint(max(ys[0], 0), ys[1])
        x = draw.randint(max(xs[0], 0), xs[1])
        box = (x, y, x + w, y + h)
        if all(_apart(box, other, 1) for other in placed):
            placed.append(box)
            return y, x
    return None


def render(image, pool, images, key, config):
    """One canvas.

    Args:
        image: (8, 8) source digit, values 0-16.
        pool: indices into `images` of digits usable as clutter.
        images: (n, 8, 8) all source digits.
        key: tuple of ints seeding this canvas's own random streams.
        config: DigitsConfig.

    Returns:
        canvas (S, S, 3) uint8 RGB, box (4,) int (x_min, y_min, x_max,
        y_max), pixels, max exclusive, and mask (S, S) bool, the digit's
        ink pixels (clutter never reaches them).
    """
    # Python's generator for the many scalar draws (ten times cheaper per
    # call than numpy's), numpy's for the noise image.
    draw = random.Random(repr(key))
    size = config.canvas_size
    background, ink = _colours(draw, config)
    # Channels first: numpy broadcasts a colour over (3, S, S) with long
    # inner loops, several times faster than over (S, S, 3).
    canvas = np.empty((3, size, size), np.float32)
    canvas[:] = background[:, None, None]
    side = draw.randint(*config.digit_size)
    alpha = _upscale(image, side, side)
    alpha[alpha < INK_THRESHOLD] = 0.0
    alpha = _tight(alpha)
    h, w = alpha.shape
    y, x = draw.randint(0, size - h), draw.randint(0, size - w)
    box = np.array([x, y, x + w, y + h])
    guard = box + [-BOX_MARGIN, -BOX_MARGIN, BOX_MARGIN, BOX_MARGIN]
    placed = []
    for _ in range(draw.randint(*config.fragments)):
        piece = _fragment(draw, images, pool, config)
        top_left = piece is not None and _free_place(
            draw, piece.shape, guard, size, placed)
        if top_left:
            _paint(canvas, piece, top_left, _colours(draw, config)[1])
    _paint(canvas, alpha, (y, x), ink)
    # Grey noise (one value for the three channels) compresses to smaller
    # PNG files than independent channel noise.
    noise = np.random.default_rng(key)
    canvas += noise.integers(-config.noise, config.noise + 1, (size, size),
                             dtype=np.int8)
    canvas = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
    mask = np.zeros((size, size), bool)
    mask[y:y + h, x:x + w] = alpha > 0
    return np.ascontiguousarray(canvas.transpose(1, 2, 0)), box, mask


def _records(config):
    """Renders every canvas; yields (record dict, canvas, mask)."""
    from sklearn.datasets import load_digits  # imported late: slow import
    digits = load_digits()
    images, targets = digits.images, digits.target
    for split_id, (split, sources) in enumerate(
            split_sources(targets, config).items()):
        for source in sources:
            pool = sources[targets[sources] != targets[source]]
            for copy in range(config.copies[split_id]):
                key = (config.seed, split_id, int(source), copy)
                canvas, box, mask = render(images[source], pool, images, key, config)
                yield {"file": f"images/{split}/{source:04d}_{copy}.png",
                       "mask": f"masks/{split}/{source:04d}_{copy}.png",
                       "label": int(targets[source]), "split": split,
                       "source": int(source), "copy": copy,
                       "box": [int(v) for v in box]}, canvas, mask


def _annotation_text(config, records):
    """The annotation file's text: deterministic, one line per canvas."""
    head = json.dumps({"classes": [str(c) for c in range(10)],
                       "config": dataclasses.asdict(config),
                       "format": "tfcaf-digits", "version": VERSION},
                      sort_keys=True)
    lines = ",\n".join(json.dumps(r, sort_keys=True) for r in records)
    return head[:-1] + ', "images": [\n' + lines + "\n]}\n"


def generate(folder, config):
    """Writes the whole set into `folder` (which must exist): PNG images
    and masks (0/255), then `annotations.json` last."""
    for split in SPLITS:
        for kind in ("images", "masks"):
            os.makedirs(os.path.join(folder, kind, split), exist_ok=True)
    records = []
    for record, canvas, mask in _records(config):
        for name, pixels in ((record["file"], canvas[..., ::-1]),
                             (record["mask"], mask.astype(np.uint8) * 255)):
            path = os.path.join(folder, name)
            if not cv2.imwrite(path, pixels):
                raise OSError(f"could not write {path}")
        records.append(record)
        if len(records) % 1000 == 0:
            log.info("digits: %d canvases written to %s", len(records), folder)
    with open(os.path.join(folder, "annotations.json"), "w") as f:
        f.write(_annotation_text(config, records))
    log.info("digits: %d canvases in %s", len(records), folder)


def _read_annotations(folder, config):
    """The annotation dict when `folder` holds this config's set, else None."""
    path = os.path.join(folder, "annotations.json")
    try:
        with open(path) as f:
            annotations = json.load(f)
    except (OSError, ValueError):
        return None
    recorded = {"config": annotations.get("config"),
                "version": annotations.get("version")}
    expected = json.loads(json.dumps({"config": dataclasses.asdict(config),
                                      "version": VERSION}))
    return annotations if recorded == expected else None


def ensure_digits(config=DigitsConfig(), data_dir=None):
    """Folder holding the set for `config`, generated when absent.

    Returns:
        (folder, annotations dict).
    """
    root = data_dir or default_cache_dir()
    folder = os.path.join(root, f"digits-{config.key()}")
    annotations = _read_annotations(folder, config)
    if annotations is not None:
        return folder, annotations
    os.makedirs(root, exist_ok=True)
    log.info("digits: generating %s", folder)
    staging = tempfile.mkdtemp(prefix=f".digits-{config.key()}.", dir=root)
    try:
        generate(staging, config)
        os.chmod(staging, 0o755)  # mkdtemp's 0700 would hide a shared cache
        if os.path.exists(folder):
            # Another process renamed its complete copy first and may be
            # reading it: keep it. Only an unusable leftover is replaced.
            if _read_annotations(folder, config) is not None:
                return folder, _read_annotations(folder, config)
            shutil.rmtree(folder)
        os.rename(staging, folder)
    except OSError:
        # Another process may have renamed its own complete copy first.
        if _read_annotations(folder, config) is None:
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder, _read_annotations(folder, config)


def load_digits(data_dir=None, split="train", *, config=None, image_size=None,
                resize="resize", check="header", skip_bad_images=False):
    """The cluttered-digits split `split` as an `ImageDataset`.

    Args:
        data_dir: cache root (default `default_cache_dir()`).
        split: "train", "val", "test", "retrieval_train" (classes 0-4) or
            "retrieval_test" (classes 5-9, ids renumbered 0-4).
        config: DigitsConfig (default parameters when None).
        image_size: pipeline size (default the canvas size).
        resize, check, skip_bad_images: see `load_dataset`.
    """
    config = config or DigitsConfig()
    folder, annotations = ensure_digits(config, data_dir)
    images = annotations["images"]
    classes = annotations["classes"]
    if split in SPLITS:
        chosen = [r for r in images if r["split"] == split]
        first, names = 0, classes
    elif split in ("retrieval_train", "retrieval_test"):
        first = 0 if split == "retrieval_train" else 5
        names = classes[first:first + 5]
        chosen = [r for r in images if first <= r["label"] < first + 5]
    else:
        raise TfcafError(f"digits split {split!r} not in {SPLITS} or "
                         "retrieval_train, retrieval_test")
    data = dataset.ImageDataset(
        name="digits", split=split,
        paths=[os.path.join(folder, r["file"]) for r in chosen],
        labels=[r["label"] - first for r in chosen],
        boxes=[[r["box"]] for r in chosen], class_names=names,
        masks=[([os.path.join(folder, r["mask"])], "") for r in chosen],
        mask_file=os.path.join(folder, "annotations.json"),
        image_size=image_size or config.canvas_size, resize=resize,
        augment=transforms.Augment(area=(0.6, 1.0), flip=False),
        source=os.path.join(folder, "annotations.json"))
    try:
        return data.check(check, skip_bad_images)
    except checks.DataError as error:
        raise checks.DataError(
            f"{error}; delete {folder} to regenerate the set") from error
