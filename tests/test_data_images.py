"""`tfcaf.data.read_image`: the one image reader of the binaries and the
datasets, every bit depth and mode against planted pixels or a PIL/OpenCV
decode of the same file; and `tfcaf.render`'s handling of what it returns."""

import logging

import cv2
import numpy as np
import pytest
from PIL import Image

from tfcaf import render
from tfcaf.data import DataError, load_dataset, read_image

SHAPE = (12, 16)


def _pixels(seed=0, shape=SHAPE + (3,), high=256, dtype=np.uint8):
    return np.random.default_rng(seed).integers(0, high, shape, dtype=dtype)


def _on_white(rgb, alpha, full):
    """Independent reference: `rgb` (H, W, 3) composited on white by
    `alpha` (H, W), both of full intensity `full`, on [0, 255]."""
    a = alpha[..., None] / full
    return (rgb / full * 255.0) * a + 255.0 * (1.0 - a)


def _grey(values):
    return np.repeat(np.asarray(values, np.float64)[..., None], 3, axis=2)


def _gray16(d):
    g = _pixels(1, SHAPE, 65536, np.uint16)
    cv2.imwrite(str(d / "g16.png"), g)
    return d / "g16.png", _grey(g / 65535 * 255)


def _rgb16(d):
    rgb = _pixels(2, SHAPE + (3,), 65536, np.uint16)
    cv2.imwrite(str(d / "c16.png"), rgb[..., ::-1])  # OpenCV writes BGR
    return d / "c16.png", rgb / 65535 * 255


def _rgba16(d):
    rgba = _pixels(3, SHAPE + (4,), 65536, np.uint16)
    cv2.imwrite(str(d / "c16a.png"), rgba[..., [2, 1, 0, 3]])
    return d / "c16a.png", _on_white(rgba[..., :3], rgba[..., 3], 65535)


def _gray16_tiff(d):
    g = _pixels(4, SHAPE, 65536, np.uint16)
    Image.fromarray(g).save(d / "g16.tif")
    return d / "g16.tif", _grey(g / 65535 * 255)


def _rgba8(d):
    rgba = _pixels(5, SHAPE + (4,))
    Image.fromarray(rgba, "RGBA").save(d / "a.png")
    return d / "a.png", _on_white(rgba[..., :3], rgba[..., 3], 255)


def _grey_alpha(d):
    la = _pixels(6, SHAPE + (2,))
    Image.fromarray(la, "LA").save(d / "la.png")
    return d / "la.png", _on_white(_grey(la[..., 0]), la[..., 1], 255)


def _palette(d):
    Image.fromarray(_pixels(7)).convert("P").save(d / "p.png")
    with Image.open(d / "p.png") as image:
        return d / "p.png", np.asarray(image.convert("RGB"), np.float64)


def _palette_transparent(d):
    image = Image.fromarray(_pixels(8)).convert("P")
    index = int(np.asarray(image)[0, 0])
    image.save(d / "pt.png", transparency=index)
    rgba = np.asarray(Image.open(d / "pt.png").convert("RGBA"), np.float64)
    assert rgba[0, 0, 3] == 0  # the planted transparent pixel
    return d / "pt.png", _on_white(rgba[..., :3], rgba[..., 3], 255)


def _cmyk_jpeg(d):
    Image.fromarray(_pixels(9, SHAPE + (4,)), "CMYK").save(d / "cmyk.jpg", quality=95)
    with Image.open(d / "cmyk.jpg") as image:
        return d / "cmyk.jpg", np.asarray(image.convert("RGB"), np.float64)


def _one_bit(d):
    bits = _pixels(10, SHAPE, 2).astype(bool)
    Image.fromarray(bits).save(d / "b.png")
    return d / "b.png", _grey(bits * 255.0)


def _float_tiff(d):
    values = np.random.default_rng(11).uniform(0, 255, SHAPE).astype(np.float32)
    Image.fromarray(values).save(d / "f.tif")
    return d / "f.tif", _grey(values)


def _int_tiff(d):
    values = _pixels(12, SHAPE, 256).astype(np.int32)
    Image.fromarray(values).save(d / "i.tif")
    return d / "i.tif", _grey(values)


def _jpeg(d):
    Image.fromarray(_pixels(13)).save(d / "c.jpg", quality=90)
    return d / "c.jpg", cv2.imread(str(d / "c.jpg"))[..., ::-1].astype(np.float64)


def _gif(d):
    Image.fromarray(_pixels(14)).save(d / "c.gif")
    with Image.open(d / "c.gif") as image:
        return d / "c.gif", np.asarray(image.convert("RGB"), np.float64)


MODES = {"16-bit grey PNG": _gray16, "16-bit RGB PNG": _rgb16, "16-bit RGBA PNG": _rgba16,
         "16-bit grey TIFF": _gray16_tiff, "RGBA PNG": _rgba8, "grey+alpha PNG": _grey_alpha,
         "palette PNG": _palette, "palette PNG with transparency": _palette_transparent,
         "CMYK JPEG": _cmyk_jpeg, "1-bit PNG": _one_bit, "float TIFF": _float_tiff,
         "32-bit integer TIFF": _int_tiff, "JPEG": _jpeg, "GIF": _gif}


@pytest.mark.parametrize("make", MODES.values(), ids=MODES.keys())
def test_every_mode_is_read_to_float_rgb_on_0_255(tmp_path, make):
    path, expected = make(tmp_path)
    image = read_image(str(path))
    assert image.shape == SHAPE + (3,) and image.dtype == np.float32
    np.testing.assert_allclose(image, expected, rtol=0, atol=1e-3)


def test_png_is_read_exactly_and_gray_becomes_rgb(tmp_path):
    rgb = _pixels()
    Image.fromarray(rgb).save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(str(tmp_path / "a.png")), rgb)
    gray = _pixels(1, SHAPE)
    Image.fromarray(gray).save(tmp_path / "g.png")
    np.testing.assert_array_equal(read_image(str(tmp_path / "g.png")), _grey(gray))


@pytest.mark.parametrize("shape", [SHAPE, SHAPE + (3,)], ids=["grey", "rgb"])
def test_16_bit_file_equals_its_8_bit_version(tmp_path, shape):
    # v * 257 is v on the 16-bit scale: 8 bits read as 16 would differ.
    eight = _pixels(20, shape)
    cv2.imwrite(str(tmp_path / "8.png"), eight)
    cv2.imwrite(str(tmp_path / "16.png"), eight.astype(np.uint16) * 257)
    np.testing.assert_array_equal(read_image(str(tmp_path / "16.png")),
                                  read_image(str(tmp_path / "8.png")))


@pytest.mark.parametrize("values, message", [
    (np.full(SHAPE, 300, np.int32), r"\(mode I, 32-bit integer\) has values in \[300, 300\], "
                                    r"outside \[0, 255\]"),
    (np.full(SHAPE, -1.5, np.float32), r"\(mode F, 32-bit float\) has values in \[-1.5, -1.5\]"),
    (np.full(SHAPE, np.nan, np.float32), r"\(mode F\) has non-finite values"),
], ids=["int above 255", "negative float", "nan"])
def test_images_without_a_scale_outside_0_255_are_refused(tmp_path, values, message):
    Image.fromarray(values).save(tmp_path / "x.tif")
    with pytest.raises(DataError, match=f"image {tmp_path}/x.tif " + message):
        read_image(str(tmp_path / "x.tif"))


def test_exif_rotated_jpeg_is_read_as_stored_with_a_warning(tmp_path, caplog):
    pixels = _pixels(21)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(tmp_path / "r.jpg", quality=95, exif=exif)
    Image.fromarray(pixels).save(tmp_path / "plain.jpg", quality=95)
    with caplog.at_level(logging.WARNING):
        rotated = read_image(str(tmp_path / "r.jpg"))
    np.testing.assert_array_equal(rotated, read_image(str(tmp_path / "plain.jpg")))
    assert [r.getMessage() for r in caplog.records] == [
        f"warning: {tmp_path}/r.jpg has EXIF orientation 6 (viewers show it rotated 90°): read "
        "as stored; rotate the file itself to explain it as shown"]


def test_folder_dataset_reads_the_same_pixels_as_read_image(tmp_path):
    folder = tmp_path / "set" / "a"
    folder.mkdir(parents=True)
    made = [make(folder) for make in (_gray16, _rgb16, _rgba16, _palette_transparent,
                                      _grey_alpha, _cmyk_jpeg, _jpeg, _gif)]
    dataset = load_dataset("folder", str(tmp_path / "set"), image_size=SHAPE)
    # At the stored size the resize is the identity: the pixels are the reader's.
    for (image, _, _), path in zip(dataset.pipeline(None), dataset.paths):
        np.testing.assert_allclose(image.numpy(), read_image(path), rtol=0, atol=1e-4,
                                   err_msg=path)
    assert sorted(dataset.paths) == sorted(str(p) for p, _ in made)


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


@pytest.mark.parametrize("size, shown", [
    ((30, 40), (384, 512)),        # small: short side enlarged to 384
    ((3000, 4000), (768, 1024)),   # large: short side shrunk to 768
    ((2000, 20), (1536, 15)),      # a strip: the cap wins over the 384 minimum
    ((20, 2000), (15, 1536)),
    ((100000, 1), (1536, 1)),      # a side is never under 1 px
])
def test_display_size_keeps_the_aspect_ratio_within_the_cap(size, shown):
    assert render.display_size(*size) == shown
    assert max(shown) <= render.MAX_SIDE


def test_figure_of_a_strip_is_capped_and_takes_float_pixels(tmp_path):
    strip = np.random.default_rng(0).uniform(0, 255, (2000, 20, 3)).astype(np.float32)
    shown = render.resize(strip, render.display_size(*strip.shape[:2]))
    picture = render.figure(shown, np.zeros(shown.shape[:2]), "title")
    assert picture.dtype == np.uint8
    assert picture.shape[0] <= render.MAX_SIDE + 40 and picture.shape[1] <= 3 * render.MAX_SIDE + 90
    # The left panel is the image, rounded to uint8 (the area average of a
    # shrink stays within the input's range).
    np.testing.assert_array_equal(picture[40:, :15], np.rint(shown).astype(np.uint8))


def test_enlarging_float_pixels_stays_within_their_range():
    # A step edge: bicubic overshoots it by ~10%, which uint8 would saturate.
    image = np.zeros((4, 4, 3), np.float32)
    image[:, 2:] = 255.0
    enlarged = render.resize(image, (40, 40))
    assert enlarged.min() == 0.0 and enlarged.max() == 255.0
    np.testing.assert_allclose(enlarged, render.resize(image.astype(np.uint8), (40, 40)),
                               rtol=0, atol=1)
