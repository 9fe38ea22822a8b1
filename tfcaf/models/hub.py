"""keras-hub Vision Transformers (ViT, DINOv2, DINOv3, DeiT, and the image
towers of CLIP and SigLIP) as models tfcaf can explain.

`load_hub_model` builds the backbone, takes its image tower with one layer
per transformer block (`hub_towers`), adds the task's head and the
preprocessing as a first layer, like tfcaf's other models: it takes raw
RGB pixels in [0, 255]. keras-hub is an optional dependency (`pip install tfcaf[hub]`,
Python >= 3.11).
"""

import json
import os

import keras

from tfcaf.errors import TfcafError
from tfcaf.models.backbones import with_preprocessing
from tfcaf.models.hub_towers import family_of, image_shape

HUB_HEADS = ("classifier", "embedding")


def import_keras_hub():
    """The keras_hub module; TfcafError with the install line without it."""
    try:
        import keras_hub
    except ImportError as err:
        raise TfcafError(f"keras_hub models need keras-hub (pip install 'tfcaf[hub]', "
                         f"Python >= 3.11): {err}") from None
    return keras_hub


# What keras-hub 0.32's ViT and DeiT layers write into get_config() beyond
# their arguments (values derived from them), which their __init__ refuses:
# a .keras file holding them would not load. {module: {class: keys}}.
_DERIVED_CONFIG = {
    "vit.vit_layers": {"ViTPatchingAndEmbedding": ("num_patches", "num_positions"),
                       "ViTEncoderBlock": ("key_dim",)},
    "deit.deit_layers": {"DeiTEmbeddings": ("num_patches", "num_positions"),
                         "DeiTEncoderBlock": ("key_dim",)},
}


def hub_custom_objects():
    """`custom_objects` that load a .keras file with keras-hub layers: the
    ViT and DeiT layers' classes, reading their config without the derived
    values."""
    models = import_keras_hub().src.models

    def loadable(cls, derived):
        def from_config(loaded, config):
            kept = {key: value for key, value in config.items() if key not in derived}
            return super(loaded, loaded).from_config(kept)
        return type(cls.__name__, (cls,), {"from_config": classmethod(from_config),
                                           "__module__": __name__})
    objects = {}
    for module, classes in _DERIVED_CONFIG.items():
        package, name = module.split(".")
        layers = getattr(getattr(models, package), name)
        objects.update({cls: loadable(getattr(layers, cls), keys)
                        for cls, keys in classes.items()})
    return objects


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
    """keras-hub `backbone` (ViT, DINOv2, DINOv3 or DeiT) as a functional model
    with one layer per transformer block.

    Returns:
        A model from the backbone's preprocessed images (input
        "backbone_images") to its (B, N, C) tokens after the final norm,
        the same layer objects and weights.
    """
    family = family_of(backbone)
    if family.tokens is None:
        raise TfcafError(f"keras_hub backbone {backbone.name} pools its tokens inside; "
                         "use load_hub_model")
    images = keras.Input(shape=image_shape(backbone), name="backbone_images")
    return keras.Model(images, family.tokens(backbone, images), name=backbone.name)


def load_hub_model(spec, weights="imagenet", config=None, head=None, num_classes=1000):
    """A keras-hub Vision Transformer with a head, its blocks one layer
    each, so that tfcaf can split at any of them.

    Args:
        spec, weights, config: see `backbone_from` (without the "keras_hub:"
            prefix): a ViT, DINOv2, DINOv3, DeiT, CLIP or SigLIP backbone
            (of CLIP and SigLIP, the image tower).
        head: "classifier": Dense(`num_classes`) logits (random weights: a
            classifier to fine-tune) of the image feature: the class token
            after the final norm (a ViT without one: the mean token;
            SigLIP: its attention pooling); "embedding": the image feature,
            CLIP's projected, L2-normalised (the image embedding of DINOv2,
            DINOv3, CLIP and SigLIP). Default: the family's (ViT, DeiT: classifier;
            DINOv2, DINOv3, CLIP, SigLIP: embedding).
        num_classes: the classifier's classes.

    Returns:
        A functional `keras.Model`: images (B, H, W, 3) RGB in [0, 255] ->
        logits (B, num_classes) or embedding (B, D), preprocessed by the
        family's image converter's statistics (ViT, SigLIP: x / 127.5 - 1;
        DINOv2, DINOv3, DeiT: ImageNet's; CLIP: CLIP's).
    """
    backbone = backbone_from(spec, weights, config)
    family = family_of(backbone)
    head = head or family.default_head
    if head not in HUB_HEADS:
        raise TfcafError(f"head={head!r}; choose one of {', '.join(HUB_HEADS)}")
    images = keras.Input(shape=image_shape(backbone), name="backbone_images")
    feature = family.feature(backbone, images)
    if head == "classifier":
        outputs = keras.layers.Dense(num_classes, name="logits")(feature)
    else:
        # Not "embedding": CLIP's and SigLIP's patch embeddings are named so.
        outputs = keras.layers.UnitNormalization(name="image_embedding")(
            family.project(backbone, feature))
    model = keras.Model(images, outputs, name=backbone.name)
    return with_preprocessing(model, family.mode)
