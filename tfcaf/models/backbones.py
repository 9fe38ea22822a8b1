"""Backbones by name: feature extractors from raw RGB pixels to the last
convolutional feature map, with their preprocessing inside.

| name | source | preprocessing | feature map at 224 px (96 for tiny) |
| --- | --- | --- | --- |
| `tiny_resnet` | built here, ~0.3 M parameters | x / 255 | (12, 12, 128) at 96 px |
| `resnet50` | keras.applications.ResNet50 | caffe | (7, 7, 2048) |
| `googlenet` | `tfcaf.models.googlenet` (Inception v1) | caffe | (7, 7, 1024) |
| `vgg16_gap` | keras.applications.VGG16 convs, no pool5, + "conv6" | caffe | (14, 14, 1024) |
| `vit_tiny` | keras-hub ViTBackbone, 8 px patches, 4 blocks x 64, class token | x / 127.5 - 1 | (1 + 64, 64) tokens at 64 px |

`vgg16_gap` is the CAM network (Zhou et al. 2016): VGG16 up to
"block5_conv3" followed by the extra 3x3 convolution "conv6" (1024, ReLU);
the ACoL head, which brings its own convolutions, goes straight on
"block5_conv3" (512 channels), as in the wsolevaluation code.

`vit_tiny` (keras-hub, `pip install 'tfcaf[hub]'`) ends in (B, N, C)
tokens, not a feature map: heads pool its class token, and ADL and ACoL,
which act on convolutional maps, do not apply.
"""

import difflib
from dataclasses import dataclass

import keras
from keras import layers

from tfcaf import graph
from tfcaf.models.googlenet import googlenet
from tfcaf.errors import TfcafError
from tfcaf.models.layers import ADL, ImagePreprocessing
from tfcaf.models.weights import imagenet_download


def _basic_block(x, filters, stride, name):
    """Residual block: two 3x3 conv-BN, projection shortcut when the shape
    changes, ReLU after the sum (named f"{name}_out")."""
    y = layers.Conv2D(filters, 3, strides=stride, padding="same",
                      use_bias=False, name=f"{name}_conv1")(x)
    y = layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                      name=f"{name}_conv2")(y)
    y = layers.BatchNormalization(name=f"{name}_bn2")(y)
    if stride != 1 or x.shape[-1] != filters:
        x = layers.Conv2D(filters, 1, strides=stride, use_bias=False,
                          name=f"{name}_shortcut_conv")(x)
        x = layers.BatchNormalization(name=f"{name}_shortcut_bn")(x)
    y = layers.Add(name=f"{name}_add")([x, y])
    return layers.ReLU(name=f"{name}_out")(y)


def tiny_resnet(input_shape=(96, 96, 3), filters=(32, 64, 128),
                name="tiny_resnet"):
    """A small residual CNN for the 96x96 cluttered digits and for tests.

    Stem conv3x3/2 (filters[0]) then one basic block per entry of `filters`,
    the first at stride 1 and the others at stride 2: total stride
    2 * 2 ** (len(filters) - 1), i.e. a 12x12 map at 96 px by default,
    with about 0.3 M parameters.

    Args:
        input_shape: (H, W, 3), pixels scaled to [0, 1].
        filters: widths of the stages, named "stage1".. ("stage3_out" is the
            last feature map by default).
        name: model name.

    Returns:
        A functional `keras.Model` (B, H, W, 3) -> (B, h, w, filters[-1]).
    """
    inputs = keras.Input(shape=input_shape, name="input")
    x = layers.Conv2D(filters[0], 3, strides=2, padding="same",
                      use_bias=False, name="stem_conv")(inputs)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for stage, width in enumerate(filters, start=1):
        x = _basic_block(x, width, 1 if stage == 1 else 2, f"stage{stage}")
    return keras.Model(inputs, x, name=name)


def _tiny(input_shape, weights, cam_conv, **options):
    del weights, cam_conv  # no pretrained weights; no CAM convolution
    return tiny_resnet(input_shape, **options)


def _resnet50(input_shape, weights, cam_conv):
    del cam_conv
    return keras.applications.ResNet50(
        include_top=False, weights=weights, input_shape=input_shape)


def _googlenet(input_shape, weights, cam_conv):
    del cam_conv
    return googlenet(include_top=False, weights=weights,
                     input_shape=input_shape)


def _vgg16_gap(input_shape, weights, cam_conv):
    vgg = keras.applications.VGG16(
        include_top=False, weights=weights, input_shape=input_shape)
    x = vgg.get_layer("block5_conv3").output
    if cam_conv:
        x = layers.Conv2D(1024, 3, padding="same", activation="relu",
                          name="conv6")(x)
    return keras.Model(vgg.input, x, name="vgg16_gap")


# The ViT of bench/vit_placement.py, sized for the digits on a CPU.
VIT_TINY = dict(patch_size=8, num_layers=4, num_heads=4, hidden_dim=64, mlp_dim=128)


def _vit_tiny(input_shape, weights, cam_conv, **options):
    del weights, cam_conv  # no pretrained weights; no CAM convolution
    from tfcaf.models.hub import backbone_from, unrolled_backbone
    config = dict(VIT_TINY, image_shape=tuple(input_shape), **options)
    return unrolled_backbone(backbone_from("ViTBackbone", None, config))


@dataclass(frozen=True)
class BackboneSpec:
    """How to build a backbone and where ADL goes in it.

    Attributes:
        build: `(input_shape, weights, cam_conv, **options) -> keras.Model`
            on preprocessed images; `weights` is None or "imagenet".
        preprocessing: `ImagePreprocessing` mode.
        adl_positions: default layers after which ADL is inserted.
        adl_gamma: default ADL threshold.
        imagenet: whether Keras distributes ImageNet weights for it.
        tokens: it ends in (B, N, C) transformer tokens, not a feature map
            (no ADL or ACoL head).
    """
    build: object
    preprocessing: str
    adl_positions: tuple
    adl_gamma: float
    imagenet: bool
    tokens: bool = False


BACKBONES = {
    "tiny_resnet": BackboneSpec(
        _tiny, "unit", ("stage2_out", "stage3_out"), 0.9, False),
    # Choe & Shim / wsolevaluation: after the first block of stage 4 and
    # the first and last blocks of stage 5.
    "resnet50": BackboneSpec(
        _resnet50, "caffe",
        ("conv4_block1_out", "conv5_block1_out", "conv5_block3_out"), 0.9,
        True),
    # Our analogue of the ResNet-50 positions (no reference placement).
    "googlenet": BackboneSpec(
        _googlenet, "caffe",
        ("inception_4a_output", "inception_5a_output", "inception_5b_output"),
        0.9, False),
    # wsolevaluation's VGG16 (14x14): after pool3, conv4_3 and conv5_3.
    "vgg16_gap": BackboneSpec(
        _vgg16_gap, "caffe", ("block3_pool", "block4_conv3", "block5_conv3"),
        0.8, True),
    "vit_tiny": BackboneSpec(_vit_tiny, "tf", (), 0.9, False, tokens=True),
}


def backbone_spec(name):
    """The `BackboneSpec` of `name`; TfcafError naming the choices."""
    if name not in BACKBONES:
        raise TfcafError(
            f"unknown backbone '{name}'; choose one of "
            f"{', '.join(BACKBONES)}")
    return BACKBONES[name]


def insert_adl(model, positions, drop_rate=0.75, gamma=0.9, seed=None,
               name=None):
    """A copy of `model` with an `ADL` layer after each named layer.

    Built with `keras.models.clone_model(..., call_function=...)`: the copy
    shares `model`'s layers (and weights); nested functional models are
    cloned the same way, so a position may lie inside one. Each ADL is
    named f"{position}_adl" and seeded `seed + i`.

    Args:
        model: functional or Sequential Keras model.
        positions: name or names of layers with 4-D outputs, at any depth.
        drop_rate, gamma: `ADL` arguments.
        seed: int or None.
        name: name of the new model (default: `model.name`).

    Returns:
        A functional `keras.Model` with `model`'s inputs and outputs shapes.

    Raises:
        TfcafError: a position names no layer of `model`.
    """
    if isinstance(positions, str):
        positions = (positions,)
    order = {position: i for i, position in enumerate(positions)}
    seen = []

    def call(layer, *args, **kwargs):
        out = layer(*args, **kwargs)
        if layer.name not in order:
            return out
        seen.append(layer.name)
        layer_seed = None if seed is None else seed + order[layer.name]
        return ADL(drop_rate, gamma, seed=layer_seed,
                   name=f"{layer.name}_adl")(out)

    if isinstance(model, keras.Sequential):  # call_function needs a functional model
        model = keras.Model(model.inputs, model.outputs, name=model.name)
    copy = keras.models.clone_model(model, clone_function=lambda layer: layer,
                                    call_function=call, recursive=True)
    missing = [p for p in positions if p not in seen]
    if missing:
        names = [layer.name for layer, _ in graph.leaf_layers(model)]
        close = difflib.get_close_matches(missing[0], names, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise TfcafError(
            f"cannot insert ADL: model '{model.name}' has no layer "
            f"'{missing[0]}'{hint}")
    return keras.Model(_single(copy.inputs), _single(copy.outputs),
                       name=name or model.name)


def _single(tensors):
    # A one-element list would make model.input / model.output lists too.
    return tensors[0] if len(tensors) == 1 else tensors


def build_backbone(name, image_size, weights=None, cam_conv=True,
                   options=None):
    """Backbone `name` as a model from raw RGB pixels to its feature map.

    Args:
        name: a key of `BACKBONES`.
        image_size: (H, W) of the input.
        weights: None or "imagenet" (resnet50, vgg16_gap only).
        cam_conv: vgg16_gap only: end with the CAM convolution "conv6".
        options: extra keyword arguments of the builder (tiny_resnet:
            `filters`).

    Returns:
        A functional `keras.Model` named "backbone": raw RGB (B, H, W, 3)
        in [0, 255] -> "preprocessing" -> features (B, h, w, C), flat.
    """
    spec = backbone_spec(name)
    if weights == "imagenet" and not spec.imagenet:
        raise TfcafError(
            f"no ImageNet weights are available for backbone '{name}'; "
            "use weights=None or a path to a weights file of the model")
    shape = (*image_size, 3)
    with imagenet_download(f"backbone '{name}'"):
        base = spec.build(shape, weights, cam_conv, **(options or {}))
    return with_preprocessing(base, spec.preprocessing, name="backbone")


def with_preprocessing(model, mode, name=None):
    """`model` preceded by an `ImagePreprocessing(mode)` layer named
    "preprocessing", so that it takes raw RGB pixels in [0, 255].

    Args:
        model: functional model with one image input (B, H, W, 3).
        mode: a key of `tfcaf.models.preprocessing.MODES`.
        name: name of the new model (default `model.name`).

    Returns:
        A functional `keras.Model` sharing `model`'s layers and weights,
        flat (nested models inlined), input named "images".
    """
    images = keras.Input(shape=model.input.shape[1:], name="images")
    x = ImagePreprocessing(mode, name="preprocessing")(images)
    return keras.Model(images, _single(graph.replay(model, [x])),
                       name=name or model.name)
