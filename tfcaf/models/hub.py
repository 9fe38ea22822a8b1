"""keras-hub Vision Transformers (ViT, DINOv2, DINOv3, DeiT, and the image
towers of CLIP and SigLIP) as models tfcaf can explain.

`load_hub_model` builds the backbone, takes its image tower with one layer
per transformer block (`hub_towers`), adds the task's head and the
preprocessing as a first layer, like tfcaf's other models: it takes raw
RGB pixels in [0, 255]. keras-hub is an optional dependency
(`pip install tfcaf[hub]`, Python >= 3.11).
"""

import json
import os

import keras
import numpy as np

from tfcaf import graph
from tfcaf.errors import TfcafError
from tfcaf.models.backbones import with_preprocessing
from tfcaf.models.hub_towers import family_of, image_shape, import_keras_hub
from tfcaf.models.preprocessing import MODES, preprocess_pixels
from tfcaf.models.weights import random_weights

HUB_HEADS = ("classifier", "embedding")


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
        return keras_hub.models.Backbone.from_preset(spec, load_weights=not random_weights(weights))
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


def _is_preset(spec):
    """Whether `spec` of `backbone_from` names a preset (or a preset
    folder), not a backbone class or a config .json."""
    return not spec.endswith(".json") and not hasattr(import_keras_hub().models, spec)


def classifier_task(spec, weights="imagenet"):
    """The keras-hub ImageClassifier that preset `spec` (a name or a
    folder) holds in its task.json, with its weights; None for a class
    name, a config .json, or a preset of a backbone alone."""
    if not _is_preset(spec):
        return None
    keras_hub = import_keras_hub()
    presets = keras_hub.src.utils.preset_utils
    try:
        if not presets.check_file_exists(spec, presets.TASK_CONFIG_FILE):
            return None
        task_class = presets.check_config_class(
            presets.load_json(spec, presets.TASK_CONFIG_FILE))
    except (ValueError, OSError) as err:
        raise TfcafError(f"cannot load keras_hub preset '{spec}': {err}") from None
    if not issubclass(task_class, keras_hub.models.ImageClassifier):
        return None
    return keras_hub.models.ImageClassifier.from_preset(
        spec, load_weights=not random_weights(weights))


def preset_preprocessing(spec, default):
    """The preprocessing mode that preset `spec`'s image converter (its
    image_converter.json: x · scale + offset) computes; `default` for a
    class name, a config .json or a preset without one.

    Raises:
        TfcafError: the converter computes none of the modes.
    """
    presets = import_keras_hub().src.utils.preset_utils
    if not _is_preset(spec) or \
            not presets.check_file_exists(spec, presets.IMAGE_CONVERTER_CONFIG_FILE):
        return default
    converter = presets.load_json(spec, presets.IMAGE_CONVERTER_CONFIG_FILE)["config"]
    scale, offset = converter.get("scale"), converter.get("offset")
    pixels = np.array([[0.0, 0.0, 0.0], [255.0, 255.0, 255.0], [200.0, 64.0, 127.0]])
    computed = pixels * (1.0 if scale is None else np.asarray(scale)) + \
        (0.0 if offset is None else np.asarray(offset))
    for mode in (default,) + tuple(MODES):
        if np.allclose(np.asarray(preprocess_pixels(keras.ops.convert_to_tensor(pixels), mode)),
                       computed, rtol=1e-4, atol=1e-4):
            return mode
    raise TfcafError(f"keras_hub preset '{spec}': its image converter (scale={scale}, "
                     f"offset={offset}) computes none of tfcaf's preprocessings "
                     f"({', '.join(MODES)})")


def load_hub_model(spec, weights="imagenet", config=None, head=None, num_classes=None):
    """A keras-hub Vision Transformer with a head, its blocks one layer
    each, so that tfcaf can split at any of them.

    Args:
        spec, weights, config: see `backbone_from` (without the "keras_hub:"
            prefix): a ViT, DINOv2, DINOv3, DeiT, CLIP or SigLIP backbone
            (of CLIP and SigLIP, the image tower), or a preset of an image
            classifier (a ViT or DeiT task).
        head: "classifier": logits of the image feature: the class token
            after the final norm (a ViT without one: the mean token;
            SigLIP: its attention pooling). A classifier preset's own head
            (its pooling and Dense layers, with their weights) unless
            `num_classes` is given; otherwise Dense(`num_classes`) with
            random weights, a classifier to fine-tune. "embedding": the
            image feature, CLIP's projected, L2-normalised (the image
            embedding of DINOv2, DINOv3, CLIP and SigLIP). Default: a
            classifier preset's or the family's (ViT, DeiT: classifier;
            DINOv2, DINOv3, CLIP, SigLIP: embedding).
        num_classes: the classifier's classes (default: a classifier
            preset's, else 1000).

    Returns:
        A functional `keras.Model`: images (B, H, W, 3) RGB in [0, 255] ->
        logits (B, num_classes) or embedding (B, D), preprocessed as the
        preset's image converter does (`preset_preprocessing`), or without
        one by the family's presets' statistics (ViT, SigLIP: x / 127.5 -
        1; DINOv2, DINOv3, DeiT: ImageNet's; CLIP: CLIP's).
    """
    if head not in (None,) + HUB_HEADS:
        raise TfcafError(f"head={head!r}; choose one of {', '.join(HUB_HEADS)}")
    task = None
    if head != "embedding" and num_classes is None and config is None:
        task = classifier_task(spec, weights)
    if task is not None:
        return _task_model(task, spec)
    backbone = backbone_from(spec, weights, config)
    family = family_of(backbone)
    head = head or family.default_head
    images = keras.Input(shape=image_shape(backbone), name="backbone_images")
    feature = family.feature(backbone, images)
    if head == "classifier":
        outputs = keras.layers.Dense(num_classes or 1000, name="logits")(feature)
    else:
        # Not "embedding": CLIP's and SigLIP's patch embeddings are named so.
        outputs = keras.layers.UnitNormalization(name="image_embedding")(
            family.project(backbone, feature))
    model = keras.Model(images, outputs, name=backbone.name)
    return with_preprocessing(model, preset_preprocessing(spec, family.mode))


def _task_model(task, spec):
    """keras-hub image classifier `task` replayed with its backbone's
    encoder unrolled: its own pooling and Dense head, its weights."""
    family = family_of(task.backbone)
    if family.unroll is None:
        raise TfcafError(f"keras_hub task {task.name} has a {type(task.backbone).__name__}, "
                         "whose classifiers tfcaf does not read")
    images = keras.Input(shape=image_shape(task.backbone), name="backbone_images")
    (logits,) = graph.replay(task, [images], call=family.unroll(task.backbone))
    return with_preprocessing(keras.Model(images, logits, name=task.name),
                              preset_preprocessing(spec, family.mode))
