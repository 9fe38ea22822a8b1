"""Datasets as tf.data pipelines of (image, label, boxes).

`load_dataset` is the one entry point of every binary. Conventions:
images float32 RGB (H, W, 3), values [0, 255] unless a `preprocess` is
asked (every bit depth and mode scaled to it by `read_image`, the one
reader); labels int32 class ids from 0; boxes float32 (x_min, y_min, x_max,
y_max) in pixels of the image the model sees, x_max/y_max exclusive,
padded with -1 rows to a fixed count (see `tfcaf.data.transforms`).
"""

from tfcaf.data.checks import DataError
from tfcaf.data.cub import load_cub
from tfcaf.data.dataset import ImageDataset
from tfcaf.data.digits import DigitsConfig, default_cache_dir, load_digits
from tfcaf.data.folder import load_folder
from tfcaf.data.images import read_image
from tfcaf.data.imagenet import load_imagenet
from tfcaf.data.transforms import Augment
from tfcaf.errors import TfcafError
from tfcaf.names import DATASETS

_DEFAULT_SPLIT = object()


def load_dataset(name="digits", data_dir=None, split=_DEFAULT_SPLIT, *,
                 image_size=None, resize="resize", check=None,
                 skip_bad_images=False, **options):
    """Loads one split of a dataset.

    Args:
        name: "digits" (embedded, generated on first use), "cub",
            "imagenet" or "folder".
        data_dir: dataset root; for "digits" the cache root (default
            `$XDG_CACHE_HOME/tfcaf` or `~/.cache/tfcaf`). Required otherwise.
        split: "train", "val", "test", "retrieval_train" or
            "retrieval_test" where the dataset has it (CUB: no "val";
            ImageNet: "val" and "train"; folder: also None for the whole
            folder). Default "train" ("val" for ImageNet, None for folder).
        image_size: int or (H, W), pixels, of the images the pipelines
            yield (default 96 for digits, 224 otherwise).
        resize: "resize" (the whole image to image_size) or "crop" (aspect
            kept, central `crop_fraction` 0.875 crop).
        check: "none", "exists", "header" (default; ImageNet train:
            "exists") or "full"; see `tfcaf.data.checks.check_examples`.
        skip_bad_images: log and leave out bad images instead of raising.
        **options: per dataset: digits `config` (DigitsConfig); imagenet
            `images_dir`, `boxes`, `synsets`; folder `boxes`.

    Returns:
        An `ImageDataset`; `.pipeline(...)` builds the tf.data pipeline.

    Raises:
        DataError: missing or malformed file, absent or corrupt image, box
            outside its image (the message names the file).
    """
    common = dict(resize=resize, skip_bad_images=skip_bad_images)
    if name == "digits":
        return load_digits(data_dir, _split(split, "train"),
                           image_size=image_size, check=check or "header",
                           **common, **options)
    if data_dir is None:
        raise TfcafError(f"dataset {name!r} needs data_dir")
    common["image_size"] = image_size or 224
    if name == "cub":
        return load_cub(data_dir, _split(split, "train"),
                        check=check or "header", **common, **options)
    if name == "imagenet":
        return load_imagenet(data_dir, _split(split, "val"), check=check,
                             **common, **options)
    if name == "folder":
        return load_folder(data_dir, _split(split, None),
                           check=check or "header", **common, **options)
    raise TfcafError(f"unknown dataset {name!r}; known: {DATASETS}")


def _split(split, default):
    return default if split is _DEFAULT_SPLIT else split


__all__ = ["Augment", "DATASETS", "DataError", "DigitsConfig", "ImageDataset",
           "default_cache_dir", "load_cub", "load_dataset", "load_digits",
           "load_folder", "load_imagenet", "read_image"]
