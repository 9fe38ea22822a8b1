"""Loading models to explain: `keras.applications` by name, or `.keras` files."""

import os

import keras

# name -> (builder, preprocess_input, default input size in pixels)
_APPLICATIONS = {
    "resnet50": (keras.applications.ResNet50, keras.applications.resnet50, 224),
    "resnet101": (keras.applications.ResNet101, keras.applications.resnet, 224),
    "vgg16": (keras.applications.VGG16, keras.applications.vgg16, 224),
    "vgg19": (keras.applications.VGG19, keras.applications.vgg19, 224),
    "densenet121": (keras.applications.DenseNet121, keras.applications.densenet, 224),
    "mobilenetv2": (keras.applications.MobileNetV2, keras.applications.mobilenet_v2, 224),
    "inceptionv3": (keras.applications.InceptionV3, keras.applications.inception_v3, 299),
    "xception": (keras.applications.Xception, keras.applications.xception, 299),
}
APPLICATION_NAMES = tuple(sorted(_APPLICATIONS))


def load_application(name, weights="imagenet"):
    """A `keras.applications` classifier and its preprocessing.

    Args:
        name: case-insensitive name, one of `APPLICATION_NAMES` (e.g.
            "ResNet50").
        weights: "imagenet" (downloaded by Keras on first use), None/"none"
            (random), or a path to a weights file (.weights.h5 or .h5).

    Returns:
        (model, preprocess) where preprocess maps RGB pixels in [0, 255],
        (B, H, W, 3), to the model's input.
    """
    key = name.lower().replace("_", "")
    if key not in _APPLICATIONS:
        raise ValueError(
            f"unknown application '{name}'; choose one of {', '.join(APPLICATION_NAMES)} "
            "or give a .keras file")
    builder, module, _ = _APPLICATIONS[key]
    if weights in (None, "none", "imagenet"):
        model = builder(weights=None if weights in (None, "none") else "imagenet")
    else:
        if not os.path.isfile(weights):
            raise FileNotFoundError(f"weights file '{weights}' does not exist")
        model = builder(weights=None)
        try:
            model.load_weights(weights)
        except (ValueError, OSError) as err:
            raise ValueError(
                f"weights file '{weights}' does not fit {name}: {err}") from None
    return model, module.preprocess_input


def load_model(spec, weights="imagenet"):
    """A model from a `.keras` file or an application name.

    `.keras` models built by tfcaf take raw RGB pixels in [0, 255] (their
    preprocessing is inside the model), so their preprocess is the identity.

    Returns:
        (model, preprocess) as `load_application`.
    """
    if spec.endswith(".keras"):
        if not os.path.isfile(spec):
            raise FileNotFoundError(f"model file '{spec}' does not exist")
        _register_tfcaf_objects()
        return keras.saving.load_model(spec, compile=False), (lambda x: x)
    return load_application(spec, weights)


def _register_tfcaf_objects():
    """Importing tfcaf's layer and loss modules registers them with Keras."""
    import importlib
    for module in ("tfcaf.models", "tfcaf.losses"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:
                raise


def input_size(model, default=224):
    """(H, W) the model takes; `default` for dimensions left open (None)."""
    _, height, width, _ = model.input_shape
    return (height or default, width or default)
