"""Loading models to explain: a saved `.keras` file or a `keras.applications`
classifier by name.

Every model `load_model` returns takes raw RGB pixels, float32 in [0, 255],
(B, H, W, 3): tfcaf models carry their preprocessing inside, and
applications get theirs as a first "preprocessing" layer (see
`tfcaf.models.preprocessing.MODES`), so no caller ever preprocesses.
"""

import os
import zipfile

import keras

# Registers tfcaf's layers and losses with Keras, so that saved models load.
import tfcaf.losses  # noqa: F401
import tfcaf.models  # noqa: F401
from tfcaf.errors import TfcafError
from tfcaf.models.backbones import with_preprocessing
from tfcaf.models.weights import imagenet_download

# name -> (builder, preprocessing mode, default input size in pixels)
_APPLICATIONS = {
    "resnet50": (keras.applications.ResNet50, "caffe", 224),
    "resnet101": (keras.applications.ResNet101, "caffe", 224),
    "vgg16": (keras.applications.VGG16, "caffe", 224),
    "vgg19": (keras.applications.VGG19, "caffe", 224),
    "densenet121": (keras.applications.DenseNet121, "torch", 224),
    "mobilenetv2": (keras.applications.MobileNetV2, "tf", 224),
    "inceptionv3": (keras.applications.InceptionV3, "tf", 299),
    "xception": (keras.applications.Xception, "tf", 299),
}
APPLICATION_NAMES = tuple(sorted(_APPLICATIONS))
SAVEDMODEL_HINT = ("bin/evaluate --model takes a SavedModel folder; bin/visualize and "
                   "bin/export take a .keras file (bin/train writes <model_dir>/model.keras)")


def load_model(spec, weights="imagenet"):
    """A model taking raw RGB pixels, from a `.keras` file or an application.

    Args:
        spec: path to a `.keras` file (saved by `bin/train` or
            `model.save`), or a case-insensitive `keras.applications` name,
            one of `APPLICATION_NAMES` (e.g. "ResNet50").
        weights: applications only: "imagenet" (downloaded by Keras on
            first use into `~/.keras/models`), None or "none" (random), or
            a path to a weights file (.weights.h5 or .h5).

    Returns:
        A `keras.Model`, images (B, H, W, 3) float32 RGB in [0, 255] ->
        its output (applications: class probabilities (B, 1000)).

    Raises:
        TfcafError: a missing or damaged `.keras` file, a SavedModel folder,
            an unknown name, a weights file that does not fit, or a failed
            ImageNet weights download (the message says what to do).
    """
    spec = os.fspath(spec)
    if os.path.isdir(spec):
        if os.path.isfile(os.path.join(spec, "saved_model.pb")):
            raise TfcafError(f"'{spec}' is a SavedModel folder (bin/export output), not a "
                             f".keras file or application name; {SAVEDMODEL_HINT}")
        raise TfcafError(f"'{spec}' is a folder; expected a .keras file or one of "
                         f"{', '.join(APPLICATION_NAMES)}")
    if spec.endswith(".keras") or os.path.isfile(spec):
        return _load_keras_file(spec)
    return load_application(spec, weights)


def _load_keras_file(path):
    if not os.path.isfile(path):
        raise TfcafError(f"model file '{path}' does not exist")
    if not path.endswith(".keras"):
        raise TfcafError(f"model file '{path}' is not a .keras file (Keras 3 format, "
                         "written by model.save('x.keras') or bin/train)")
    if not zipfile.is_zipfile(path):
        raise TfcafError(f"'{path}' is not a .keras model: not a zip archive "
                         "(damaged or not written by model.save)")
    with zipfile.ZipFile(path) as archive:
        if "config.json" not in archive.namelist():
            raise TfcafError(f"'{path}' is not a .keras model: the archive has no "
                             "config.json (damaged or not written by model.save)")
    try:
        return keras.saving.load_model(path, compile=False)
    except (ValueError, TypeError, KeyError, OSError) as err:
        raise TfcafError(f"cannot load model file '{path}': {err}") from None


def load_application(name, weights="imagenet"):
    """A `keras.applications` classifier taking raw RGB pixels in [0, 255].

    Args and Raises: see `load_model` (`name` is an application name).

    Returns:
        A functional `keras.Model` with the application's layers and a first
        `ImagePreprocessing` layer named "preprocessing".
    """
    key = name.lower().replace("_", "")
    if key not in _APPLICATIONS:
        raise TfcafError(
            f"unknown application '{name}'; choose one of {', '.join(APPLICATION_NAMES)} "
            "or give a .keras file")
    builder, mode, _ = _APPLICATIONS[key]
    if isinstance(weights, str) and weights.lower() == "none":
        weights = None
    if weights in (None, "imagenet"):
        with imagenet_download(builder.__name__):
            model = builder(weights=weights)
    else:
        if not os.path.isfile(weights):
            raise TfcafError(f"weights file '{weights}' does not exist")
        model = builder(weights=None)
        try:
            model.load_weights(weights)
        except (ValueError, OSError) as err:
            raise TfcafError(f"weights file '{weights}' does not fit {name}: {err}") from None
    return with_preprocessing(model, mode)


def input_size(model, default=224):
    """(H, W) the model takes; `default` for dimensions left open (None)."""
    _, height, width, _ = model.input_shape
    return (height or default, width or default)
