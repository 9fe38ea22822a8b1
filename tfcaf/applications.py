"""Loading models to explain: a saved `.keras` file or a `keras.applications`
classifier by name.

Every model `load_model` returns takes raw RGB pixels, float32 in [0, 255],
(B, H, W, 3): tfcaf models carry their preprocessing inside, and
applications get theirs as a first "preprocessing" layer (see
`tfcaf.models.preprocessing.MODES`), so no caller ever preprocesses. A
plain Keras model trained on other inputs gets its preprocessing with
`load_model(path, preprocessing=MODE)`; one that shows none is warned about.
"""

import logging
import os
import weakref
import zipfile
import zlib

import keras
import numpy as np

# Registers tfcaf's layers and losses with Keras, so that saved models load.
import tfcaf.losses  # noqa: F401
import tfcaf.models  # noqa: F401
from tfcaf import graph
from tfcaf.errors import TfcafError
from tfcaf.models.backbones import with_preprocessing
from tfcaf.models.layers import ImagePreprocessing
from tfcaf.models.preprocessing import MODES, check_mode
from tfcaf.models.weights import imagenet_download, load_weights_file, random_weights

log = logging.getLogger("tfcaf.applications")

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
HUB_PREFIX = "keras_hub:"
SAVEDMODEL_HINT = ("bin/evaluate --model takes a SavedModel folder; bin/visualize and "
                   "bin/export take a .keras file (bin/train writes <model_dir>/model.keras)")


def load_model(spec, weights="imagenet", preprocessing=None):
    """A model taking raw RGB pixels, from a `.keras` file or an application.

    Args:
        spec: path to a `.keras` file (saved by `bin/train` or
            `model.save`), a case-insensitive `keras.applications` name,
            one of `APPLICATION_NAMES` (e.g. "ResNet50"), or
            "keras_hub:<preset, preset folder or backbone config .json>" (a
            ViT, DINOv2, DINOv3, DeiT, or CLIP or SigLIP image tower, with its head:
            `tfcaf.models.hub.load_hub_model`).
        weights: applications: "imagenet" (downloaded by Keras on first
            use into `~/.keras/models`; keras_hub presets: the preset's
            weights), None or "none" (random), or a path
            to a weights file (.weights.h5 or .h5). `.keras` files: a
            weights file loaded over the file's own (which "imagenet" and
            None keep; "none" is refused).
        preprocessing: a key of `tfcaf.models.preprocessing.MODES` for a
            `.keras` model without preprocessing of its own (e.g. "unit"
            for one trained on x / 255), put before it as a layer; None
            (or "none"): the model as it is. Refused for applications and
            for models that already preprocess.

    Returns:
        A `keras.Model`, images (B, H, W, 3) float32 RGB in [0, 255] ->
        its output (applications: class probabilities (B, 1000)). A model
        that shows no preprocessing before its first convolution or Dense
        layer is logged with a "warning:" line (`shows_preprocessing`).

    Raises:
        TfcafError: a missing, damaged or truncated `.keras` file, a
            SavedModel folder, an unknown name, a missing weights file or
            one that does not fit, preprocessing the model already has, or
            a failed ImageNet weights download (the message says what to do).
    """
    if not isinstance(spec, (str, os.PathLike)):
        raise TfcafError(f"model: expected a .keras path or an application name, got "
                         f"{type(spec).__name__}")
    spec = os.fspath(spec)
    if preprocessing is not None:
        check_mode(preprocessing)
    if spec.startswith(HUB_PREFIX):
        if preprocessing not in (None, "none"):
            raise TfcafError(f"preprocessing={preprocessing!r}: {spec} brings its own (the "
                             "first layer of the loaded model); leave it out")
        from tfcaf.models.hub import load_hub_model
        return load_hub_model(spec[len(HUB_PREFIX):], weights)
    if os.path.isdir(spec):
        if os.path.isfile(os.path.join(spec, "saved_model.pb")):
            raise TfcafError(f"'{spec}' is a SavedModel folder (bin/export output), not a "
                             f".keras file or application name; {SAVEDMODEL_HINT}")
        raise TfcafError(f"'{spec}' is a folder; expected a .keras file or one of "
                         f"{', '.join(APPLICATION_NAMES)}")
    if spec.endswith(".keras") or os.path.isfile(spec):
        model = _load_keras_file(spec)
        if weights not in (None, "imagenet"):
            _load_weights_over(model, spec, weights)
    else:
        if preprocessing not in (None, "none"):
            raise TfcafError(f"preprocessing={preprocessing!r}: application {spec} brings "
                             "its own (the first layer of the loaded model); leave it out")
        return load_application(spec, weights)
    return _with_preprocessing(model, spec, preprocessing)


def _load_keras_file(path):
    if not os.path.isfile(path):
        raise TfcafError(f"model file '{path}' does not exist")
    if not path.endswith(".keras"):
        raise TfcafError(f"model file '{path}' is not a .keras file (Keras 3 format, "
                         "written by model.save('x.keras') or bin/train)")
    damaged = "damaged or not written by model.save"
    if not zipfile.is_zipfile(path):
        raise TfcafError(f"'{path}' is not a .keras model: not a zip archive ({damaged})")
    with zipfile.ZipFile(path) as archive:
        if "config.json" not in archive.namelist():
            raise TfcafError(f"'{path}' is not a .keras model: the archive has no "
                             f"config.json ({damaged})")
        config = archive.read("config.json")
        # keras-hub's module names, or tfcaf's for the classes it loads them by.
        hub_layers = b'"keras_hub' in config or b'"tfcaf.models.hub"' in config
    custom_objects = None
    if hub_layers:  # a keras-hub backbone's layers
        from tfcaf.models.hub import hub_custom_objects
        custom_objects = hub_custom_objects()
    try:
        return keras.saving.load_model(path, compile=False, custom_objects=custom_objects)
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:
        # A bad CRC or a cut member passes is_zipfile: only reading finds it.
        raise TfcafError(f"'{path}' is a damaged .keras file ({err}); save or copy it "
                         "again") from None
    except (ValueError, TypeError, KeyError, OSError) as err:
        raise TfcafError(f"cannot load model file '{path}': {_first_line(err)}") from None


def _first_line(err):
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def _load_weights_over(model, path, weights):
    """Loads the weights file `weights` into the `.keras` model from `path`."""
    if random_weights(weights):
        raise TfcafError(f"weights='none': '{path}' is a .keras model with its own weights; "
                         "weights=none (random) is for application names")
    load_weights_file(model, weights)


def _with_preprocessing(model, source, preprocessing):
    """`model` behind an `ImagePreprocessing(preprocessing)` layer, refused
    when the model already preprocesses; None: as it is, with a warning
    when it shows no preprocessing."""
    if preprocessing == "none":
        return model
    if preprocessing is None:
        warn_if_unpreprocessed(model, source)
        return model
    found = preprocessing_layer(model)
    if found is not None:
        raise TfcafError(f"preprocessing={preprocessing!r}: model '{source}' already "
                         f"preprocesses its input (layer '{found.name}', "
                         f"{type(found).__name__}); leave it out")
    return with_preprocessing(model, preprocessing)
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
    if random_weights(weights):
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


def input_size(model, size=None, default=224):
    """(H, W) in pixels that images are resized to for `model`.

    Args:
        model: a Keras model taking (B, H, W, 3) images.
        size: the size asked for (an int or (H, W), e.g. `--image_size`);
            None: the model's own.
        default: pixels for the dimensions the model leaves open (None)
            when no `size` is asked; None: a size must be asked for them.

    Raises:
        TfcafError: `size` differs from the model's fixed size, or the
            model's size is open and neither `size` nor `default` is given.
    """
    return fit_size(tuple(model.input_shape[1:3]), size, default, f"model '{model.name}'")


def fit_size(takes, size=None, default=224, what="the model"):
    """`input_size` for a model described as `what` that takes (H, W)
    images `takes` (None for an open dimension)."""
    if size is not None:
        asked = (size, size) if isinstance(size, int) else tuple(size)
        if any(t is not None and t != a for t, a in zip(takes, asked)):
            shown = "x".join(str(t or "any") for t in takes)
            raise TfcafError(f"image_size={'x'.join(map(str, asked))}: {what} takes {shown} "
                             "images only; leave image_size out to use its own")
        return asked
    if None in takes and default is None:
        raise TfcafError(f"{what} takes images of any size; give the size with image_size")
    return tuple(t or default for t in takes)


# Layers that map raw pixels to a network's input range.
_PREPROCESSING_LAYERS = (ImagePreprocessing, keras.layers.Rescaling, keras.layers.Normalization)
# Layers that read pixels with weights: the first one tells where the
# network proper starts.
_WEIGHTED_LAYERS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
                    keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D,
                    keras.layers.Conv2DTranspose, keras.layers.Dense, keras.layers.EinsumDense)
_WARNED = weakref.WeakSet()


def preprocessing_layer(model):
    """The first `ImagePreprocessing`, Rescaling or Normalization layer
    before `model`'s first convolution or Dense layer, else None."""
    for layer, _ in _layers_to_first_weighted(model)[0]:
        if isinstance(layer, _PREPROCESSING_LAYERS):
            return layer
    return None


def _layers_to_first_weighted(model):
    """([(layer, output)] before the first weighted leaf layer, that layer's
    call or None, the replay's input tensor)."""
    inputs = graph.fresh_inputs(model)
    calls = []
    graph.replay(model, inputs, call=graph.recorder(calls))
    for i, call in enumerate(calls):
        if isinstance(call.layer, _WEIGHTED_LAYERS):
            return [(c.layer, c.output) for c in calls[:i]], call, inputs[0]
    return [(c.layer, c.output) for c in calls], None, inputs[0]


def shows_preprocessing(model):
    """Whether `model` shows any preprocessing before its first convolution
    or Dense layer: a preprocessing layer, or layers that change the values
    of random pixels in [0, 255] (e.g. a Lambda x / 255). True when there
    is nothing to judge by: no such layer, several inputs, or a subclassed
    model whose graph cannot be walked."""
    if len(getattr(model, "inputs", None) or []) != 1:
        return True
    try:
        before, first, images = _layers_to_first_weighted(model)
    except graph.GraphError:
        return True
    if first is None or any(isinstance(l, _PREPROCESSING_LAYERS) for l, _ in before):
        return True
    fed = first.args[0]
    if fed is images:
        return False
    height, width, channels = (d or 32 for d in model.input_shape[1:])
    pixels = np.random.default_rng(0).uniform(0, 255, (1, height, width, channels))
    seen = np.asarray(keras.Model(images, fed)(pixels.astype("float32")))
    return not (seen.min() >= 0 and 128 < seen.max() <= 255)


def warn_if_unpreprocessed(model, source=None):
    """Logs one "warning:" line (once per model) when `model`, which will
    be fed raw pixels in [0, 255], shows no preprocessing."""
    if model in _WARNED or shows_preprocessing(model):
        return
    _WARNED.add(model)
    log.warning("warning: model '%s' shows no preprocessing (Rescaling, Normalization or "
                "tfcaf ImagePreprocessing) before its first convolution or Dense layer, so "
                "it gets raw pixels in [0, 255]; if it was trained on other inputs, give "
                "the preprocessing (--preprocessing): %s", source or model.name,
                ", ".join(m for m in MODES if m != "none"))


def as_model(model, weights="imagenet"):
    """`model` when it is a Keras model; loaded with `load_model` when it is
    a `.keras` path or an application name (for `tfcaf.explain`)."""
    if isinstance(model, (str, os.PathLike)):
        return load_model(model, weights)
    return model


def as_images(images, model, default_size=224):
    """`images` as `model`'s batch (for `tfcaf.explain`).

    Args:
        images: an image file path or a list of them, read with
            `tfcaf.data.read_image` and resized to the model's input size
            (`default_size` pixels where it is open); anything else (an
            array or tensor (B, H, W, C), a list of same-shaped images) is
            returned unchanged.
        model: the Keras model the batch is for.

    Returns:
        (B, H, W, 3) float32 RGB pixels in [0, 255] for paths; else `images`.
        For paths, a model that shows no preprocessing is warned about
        (`warn_if_unpreprocessed`).
    """
    paths = [images] if isinstance(images, (str, os.PathLike)) else images
    if not isinstance(paths, (list, tuple)) or not paths:
        return images
    if not all(isinstance(p, (str, os.PathLike)) for p in paths):
        shapes = list(dict.fromkeys(np.shape(p) for p in paths))
        if len(shapes) > 1:
            raise TfcafError(f"images: a list of arrays of different shapes "
                             f"({', '.join(map(str, shapes))}); give one (B, H, W, C) "
                             "batch of the model's input size, or image file paths")
        return images
    from tfcaf.data import read_image
    from tfcaf.render import resize
    size = input_size(model, default=default_size)
    warn_if_unpreprocessed(model)
    return np.stack([resize(read_image(os.fspath(p)), size) for p in paths]).astype("float32")
