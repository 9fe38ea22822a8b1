"""GoogLeNet (Inception v1, Szegedy et al., CVPR 2015), the paper's second
retrieval backbone, in the style of a `keras.applications` builder.

Variant: the original BVLC/Caffe network without batch normalization and
without the two auxiliary classifiers: ReLU convolutions with biases, the two
local response normalizations of the stem, nine inception modules with the
widths of the paper's Table 1, global average pooling (the paper's 7x7
average pool at 224 px, any size here), dropout 0.4 and the classifier:
about 7.0 million parameters with a 1000-class top. Layer names are Caffe's
with "/" replaced by "_" (e.g. "inception_4e_output"). Convolutions and
pools use "same" padding, which reproduces Caffe's feature-map sizes at
224 px (112, 56, 28, 14, 7).

Keras distributes no ImageNet weights for this network; `weights` is None
or a path to a weights file of the same architecture. Inputs are expected
preprocessed Caffe-style (BGR, ImageNet mean subtracted), see
`tfcaf.models.layers.ImagePreprocessing`.
"""

import keras
from keras import layers

from tfcaf.models.layers import LocalResponseNormalization
from tfcaf.models.weights import load_weights_file
from tfcaf.errors import TfcafError

# Table 1 of the paper: module -> (#1x1, #3x3 reduce, #3x3, #5x5 reduce,
# #5x5, pool proj).
INCEPTION_MODULES = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
# Max pools (3x3, stride 2) between stages, after these modules.
_POOL_AFTER = {"3b": "pool3_3x3_s2", "4e": "pool4_3x3_s2"}


def _conv(x, filters, size, name, strides=1):
    return layers.Conv2D(filters, size, strides=strides, padding="same",
                         activation="relu", name=name)(x)


def _max_pool(x, name, strides=2):
    return layers.MaxPooling2D(3, strides=strides, padding="same",
                               name=name)(x)


def inception_module(x, widths, name):
    """One inception module: four parallel branches concatenated.

    Args:
        x: (B, h, w, C) tensor.
        widths: (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj).
        name: prefix, e.g. "inception_3a".

    Returns:
        (B, h, w, #1x1 + #3x3 + #5x5 + pool proj), named f"{name}_output".
    """
    n1, r3, n3, r5, n5, proj = widths
    branch1 = _conv(x, n1, 1, f"{name}_1x1")
    branch3 = _conv(_conv(x, r3, 1, f"{name}_3x3_reduce"), n3, 3,
                    f"{name}_3x3")
    branch5 = _conv(_conv(x, r5, 1, f"{name}_5x5_reduce"), n5, 5,
                    f"{name}_5x5")
    pool = _max_pool(x, f"{name}_pool", strides=1)
    branch_pool = _conv(pool, proj, 1, f"{name}_pool_proj")
    return layers.Concatenate(name=f"{name}_output")(
        [branch1, branch3, branch5, branch_pool])


def googlenet(include_top=True, weights=None, input_shape=None, classes=1000,
              classifier_activation="softmax", name="googlenet"):
    """Builds GoogLeNet (Inception v1, BN-free, no auxiliary classifiers).

    Args:
        include_top: add global average pooling, dropout 0.4 and the
            `classes`-way classifier "loss3_classifier"; else the model ends
            at "inception_5b_output" (B, h, w, 1024).
        weights: None (random) or a path to a weights file of this exact
            architecture. ImageNet weights are not distributed by Keras.
        input_shape: (H, W, 3); default (224, 224, 3).
        classes: classifier width.
        classifier_activation: activation of the classifier ("softmax",
            or None for logits).
        name: model name.

    Returns:
        A functional `keras.Model`, images (B, H, W, 3) preprocessed
        Caffe-style -> (B, classes) or (B, h, w, 1024).

    Raises:
        TfcafError: `weights="imagenet"`.
        FileNotFoundError: a weights path that does not exist.
    """
    if weights == "imagenet":
        raise TfcafError(
            "Keras distributes no ImageNet weights for GoogLeNet; use "
            "weights=None or a path to a weights file")
    inputs = keras.Input(shape=input_shape or (224, 224, 3), name="input")
    x = _conv(inputs, 64, 7, "conv1_7x7_s2", strides=2)
    x = _max_pool(x, "pool1_3x3_s2")
    x = LocalResponseNormalization(name="pool1_norm1")(x)
    x = _conv(x, 64, 1, "conv2_3x3_reduce")
    x = _conv(x, 192, 3, "conv2_3x3")
    x = LocalResponseNormalization(name="conv2_norm2")(x)
    x = _max_pool(x, "pool2_3x3_s2")
    for module, widths in INCEPTION_MODULES.items():
        x = inception_module(x, widths, f"inception_{module}")
        if module in _POOL_AFTER:
            x = _max_pool(x, _POOL_AFTER[module])
    if include_top:
        x = layers.GlobalAveragePooling2D(name="pool5_7x7_s1")(x)
        x = layers.Dropout(0.4, name="pool5_drop_7x7_s1")(x)
        x = layers.Dense(classes, activation=classifier_activation,
                         name="loss3_classifier")(x)
    model = keras.Model(inputs, x, name=name)
    if weights is not None:
        load_weights_file(model, weights)
    return model
