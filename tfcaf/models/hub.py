"""keras-hub Vision Transformers (ViT, DINOv2) as models tfcaf can explain.

keras-hub runs a backbone's transformer blocks in a Python loop inside one
encoder layer, so no split could reach a block. `load_hub_model` replays
the backbone with that loop unrolled into the functional graph (the same
layer objects and weights), adds the task's head and the preprocessing as
a first layer, like tfcaf's other models: it takes raw RGB pixels in
[0, 255]. keras-hub is an optional dependency (`pip install tfcaf[hub]`,
Python >= 3.11).
"""

import json
import os

import keras

from tfcaf import graph
from tfcaf.errors import TfcafError
from tfcaf.models.backbones import with_preprocessing
from tfcaf.models.layers import ClassToken

HUB_HEADS = ("classifier", "embedding")


def import_keras_hub():
    """The keras_hub module; TfcafError with the install line without it."""
    try:
        import keras_hub
    except ImportError as err:
        raise TfcafError(f"keras_hub models need keras-hub (pip install 'tfcaf[hub]', "
                         f"Python >= 3.11): {err}") from None
    return keras_hub


def _families(keras_hub):
    """{backbone class: (unroll function, preprocessing mode, default head)}.

    The modes are those of the families' ImageNet presets' image
    converters: ViT (x / 127.5 - 1) and DINOv2 (ImageNet mean and std).
    """
    def vit_encoder(encoder, x):
        x = encoder.dropout(x)
        for block in encoder.encoder_layers:
            x = block(x)
        return encoder.layer_norm(x)

    def dinov2_encoder(encoder, x, training=None):
        stages = {}
        for index, block in enumerate(encoder.layers, start=1):
            x = block(x)
            stages[f"stage{index}"] = x
        return x, stages
    models, layers = keras_hub.models, keras_hub.src.models
    return {
        models.ViTBackbone: (layers.vit.vit_layers.ViTEncoder, vit_encoder, "tf", "classifier"),
        models.DINOV2Backbone: (layers.dinov2.dinov2_layers.DINOV2Encoder, dinov2_encoder,
                                "torch", "embedding"),
    }


# What keras-hub 0.32's ViT layers write into get_config() beyond their
# arguments (values derived from them), which their __init__ refuses: a
# .keras file holding them would not load.
_DERIVED_CONFIG = {"ViTPatchingAndEmbedding": ("num_patches", "num_positions"),
                   "ViTEncoderBlock": ("key_dim",)}


def hub_custom_objects():
    """`custom_objects` that load a .keras file with keras-hub layers: the
    ViT layers' classes, reading their config without the derived values."""
    vit_layers = import_keras_hub().src.models.vit.vit_layers

    def loadable(cls, derived):
        def from_config(loaded, config):
            kept = {key: value for key, value in config.items() if key not in derived}
            return super(loaded, loaded).from_config(kept)
        return type(cls.__name__, (cls,), {"from_config": classmethod(from_config),
                                           "__module__": __name__})
    return {name: loadable(getattr(vit_layers, name), derived)
            for name, derived in _DERIVED_CONFIG.items()}


def backbone_from(spec, weights="imagenet", config=None):
    """A keras-hub backbone.

    Args:
        spec: a backbone class name of `keras_hub.models` (e.g.
            "ViTBackbone", built from `config`), a keras-hub preset name
            (e.g. "dinov2_small"; downloaded on first use), a preset folder
            (`backbone.save_to_preset`), or a backbone config .json file (a
            preset folder's config.json: random weights).
        weights: "imagenet": the preset's weights; None or "none": random.
        config: the class's keyword arguments (with a class name only).
    """
    keras_hub = import_keras_hub()
    random = weights is None or (isinstance(weights, str) and weights.lower() == "none")
    if spec.endswith(".json"):
        if not os.path.isfile(spec):
            raise TfcafError(f"keras_hub config file '{spec}' does not exist")
        with open(spec) as f:
            return keras.saving.deserialize_keras_object(json.load(f))
    cls = getattr(keras_hub.models, spec, None)
    if isinstance(cls, type) and issubclass(cls, keras_hub.models.Backbone):
        if config is None:
            raise TfcafError(f"keras_hub:{spec} needs its config (the class's arguments, "
                             "e.g. image_shape, patch_size, num_layers); or give a preset")
        return cls(**config)
    if config is not None:
        raise TfcafError(f"keras_hub:{spec}: config is for a backbone class name, not a "
                         "preset")
    try:
        return keras_hub.models.Backbone.from_preset(spec, load_weights=not random)
    except (ValueError, OSError, FileNotFoundError) as err:
        raise TfcafError(f"cannot load keras_hub preset '{spec}': {err}") from None


def unrolled_backbone(backbone):
    """keras-hub `backbone` (a ViTBackbone or DINOV2Backbone) as a
    functional model with one layer per transformer block.

    Returns:
        (model, preprocessing mode, default head): the model maps the
        backbone's preprocessed images (input "backbone_images") to its
        (B, N, C) tokens, the same layer objects and weights.
    """
    family = next((value for cls, value in _families(import_keras_hub()).items()
                   if isinstance(backbone, cls)), None)
    if family is None:
        raise TfcafError(f"keras_hub backbone {backbone.name} is a {type(backbone).__name__}; "
                         "tfcaf unrolls ViTBackbone and DINOV2Backbone")
    encoder_class, unroll, mode, default_head = family

    def call(layer, args, kwargs):
        if isinstance(layer, encoder_class):
            return unroll(layer, *args)
        return layer(*args, **kwargs)
    images = keras.Input(shape=backbone.inputs[0].shape[1:], name="backbone_images")
    (tokens,) = graph.replay(backbone, [images], call=call)
    return keras.Model(images, tokens, name=backbone.name), mode, default_head


def token_pooling(tokens, class_token=True):
    """(B, C) pooled image feature of (B, N, C) tokens: the class token, or
    the mean token of a ViT without one."""
    if class_token:
        return ClassToken(name="class_token")(tokens)
    return keras.layers.GlobalAveragePooling1D(name="pool")(tokens)


def load_hub_model(spec, weights="imagenet", config=None, head=None, num_classes=1000):
    """A keras-hub ViT or DINOv2 backbone with a head, unrolled so that
    tfcaf can split at any of its blocks.

    Args:
        spec, weights, config: see `backbone_from` (without the "keras_hub:"
            prefix).
        head: "classifier": the class token (a ViT without one: the mean
            token), Dense(`num_classes`) logits
            (random weights: a classifier to fine-tune); "embedding": the
            class token after the final norm, L2-normalised (DINOv2's image
            embedding). Default: the family's (ViT: classifier, DINOv2:
            embedding).
        num_classes: the classifier's classes.

    Returns:
        A functional `keras.Model`: images (B, H, W, 3) RGB in [0, 255] ->
        logits (B, num_classes) or embedding (B, C).
    """
    backbone = backbone_from(spec, weights, config)
    unrolled, mode, default_head = unrolled_backbone(backbone)
    head = head or default_head
    if head not in HUB_HEADS:
        raise TfcafError(f"head={head!r}; choose one of {', '.join(HUB_HEADS)}")
    x = token_pooling(unrolled.output, getattr(backbone, "use_class_token", True))
    if head == "classifier":
        outputs = keras.layers.Dense(num_classes, name="logits")(x)
    else:
        outputs = keras.layers.UnitNormalization(name="embedding")(x)
    model = keras.Model(unrolled.input, outputs, name=backbone.name)
    return with_preprocessing(model, mode)
