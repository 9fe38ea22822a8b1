"""`tfcaf.data.read_image`: the one image reader of every binary."""

import numpy as np
import pytest
from PIL import Image

from tfcaf.data import DataError, load_dataset, read_image


def _pixels(seed=0, shape=(20, 30, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_png_is_read_exactly_and_gray_becomes_rgb(tmp_path):
    rgb = _pixels()
    Image.fromarray(rgb).save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(str(tmp_path / "a.png")), rgb)
    gray = _pixels(1, (20, 30))
    Image.fromarray(gray).save(tmp_path / "g.png")
    image = read_image(str(tmp_path / "g.png"))
    assert image.shape == (20, 30, 3) and image.dtype == np.uint8
    for channel in range(3):
        np.testing.assert_array_equal(image[..., channel], gray)


def _truncated_jpeg(tmp_path):
    path = tmp_path / "cut.jpg"
    Image.fromarray(_pixels(shape=(64, 64, 3))).save(path, quality=95)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return str(path)


def test_truncated_jpeg_is_rejected_as_training_rejects_it(tmp_path):
    path = _truncated_jpeg(tmp_path)
    with pytest.raises(DataError, match=f"truncated image: {path}"):
        read_image(path)
    # The same file in a folder dataset stops training with the same words.
    (tmp_path / "set" / "cat").mkdir(parents=True)
    (tmp_path / "set" / "cat" / "cut.jpg").write_bytes(open(path, "rb").read())
    with pytest.raises(DataError, match="truncated image: .*cut.jpg"):
        load_dataset("folder", str(tmp_path / "set"), check="header")


@pytest.mark.parametrize("make, message", [
    (lambda d: str(d / "missing.png"), "image file absent: .*missing.png"),
    (lambda d: str(d), "is a folder, not an image"),
    (lambda d: (d / "x.jpg").write_bytes(b"random bytes" * 9) and str(d / "x.jpg"),
     "unreadable image .*x.jpg"),
])
def test_bad_paths_are_named(tmp_path, make, message):
    with pytest.raises(DataError, match=message):
        read_image(make(tmp_path))
