"""The one table of input preprocessings: raw RGB pixels in [0, 255] to
what a backbone was trained on.

tfcaf models carry their preprocessing as the `ImagePreprocessing` layer,
`keras.applications` models loaded by `tfcaf.applications` get it the same
way, and the data pipelines (`ImageDataset.pipeline(preprocess=...)`) take
the same mode names, so every preprocessing in the project is one of these.
"""

from keras import ops

from tfcaf.errors import TfcafError
from tfcaf.names import PREPROCESSING_MODES

# Per-channel ImageNet statistics, as keras.applications uses them.
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
TORCH_RGB_MEAN = (0.485, 0.456, 0.406)
TORCH_RGB_STD = (0.229, 0.224, 0.225)
# OpenAI CLIP's image statistics (its image converters; keras-hub's CLIP
# and MetaCLIP 2 presets use them too).
CLIP_RGB_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_RGB_STD = (0.26862954, 0.26130258, 0.27577711)
# The modes that standardise x / 255 by per-channel RGB means and stds.
STANDARDIZATIONS = {"torch": (TORCH_RGB_MEAN, TORCH_RGB_STD),
                    "clip": (CLIP_RGB_MEAN, CLIP_RGB_STD)}

MODES = dict(zip(PREPROCESSING_MODES, (
    "RGB -> BGR, minus the ImageNet BGR means (ResNet50, VGG16/19, Caffe GoogLeNet)",
    "x / 255, minus the ImageNet RGB means, over their standard deviations (DenseNet)",
    "x / 127.5 - 1, to [-1, 1] (MobileNetV2, InceptionV3, Xception)",
    "x / 255, to [0, 1] (tiny_resnet)",
    "identity (models that preprocess inside, e.g. EfficientNet)",
    "x / 255, minus CLIP's RGB means, over their standard deviations (keras-hub CLIP)",
)))


def check_mode(mode):
    """`mode` if it names a row of `MODES`; TfcafError listing them otherwise."""
    if mode not in MODES:
        raise TfcafError(f"unknown preprocessing mode {mode!r}; choose one of "
                         f"{', '.join(MODES)}")
    return mode


def preprocess_pixels(pixels, mode):
    """Applies preprocessing `mode` to RGB pixels.

    Args:
        pixels: (..., 3) float tensor, RGB in [0, 255].
        mode: a key of `MODES`.

    Returns:
        A tensor of the same shape and dtype.
    """
    check_mode(mode)
    dtype = pixels.dtype
    if mode == "caffe":
        return ops.flip(pixels, axis=-1) - ops.convert_to_tensor(CAFFE_BGR_MEAN, dtype)
    if mode in STANDARDIZATIONS:
        mean, std = (ops.convert_to_tensor(v, dtype) for v in STANDARDIZATIONS[mode])
        return (pixels / ops.cast(255.0, dtype) - mean) / std
    if mode == "tf":
        return pixels / ops.cast(127.5, dtype) - ops.cast(1.0, dtype)
    if mode == "unit":
        return pixels / ops.cast(255.0, dtype)
    return pixels
