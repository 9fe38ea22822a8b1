"""The image towers of keras-hub's Vision Transformer families, with one
layer per transformer block.

keras-hub's ViT, DINOv2, DINOv3 and DeiT backbones run their blocks in a
Python loop inside one encoder layer, so no split could reach a block:
their towers replay the backbone with that loop unrolled into the
functional graph (the same layer objects and weights). CLIP's and SigLIP's
vision encoders already are functional models with one layer per block;
their towers call them. Each family also says what its image feature is (the
class token, or SigLIP's attention pooling), its embedding (CLIP projects
the feature), its preprocessing, and its default head.
"""

from typing import Callable, NamedTuple, Optional

import keras

from tfcaf import graph
from tfcaf.errors import TfcafError
from tfcaf.models.hub_layers import FirstOutput, RotaryBlock, TokenCount
from tfcaf.models.layers import ClassToken


def import_keras_hub():
    """The keras_hub module; TfcafError with the install line without it."""
    try:
        import keras_hub
    except ImportError as err:
        raise TfcafError(f"keras_hub models need keras-hub (pip install 'tfcaf[hub]', "
                         f"Python >= 3.11): {err}") from None
    return keras_hub


class HubFamily(NamedTuple):
    """How tfcaf reads one keras-hub backbone family.

    Attributes:
        tokens: `(backbone, images) -> (B, N, C)` tokens after the final
            norm, one layer per block; None where the tower pools inside.
        feature: `(backbone, images) -> (B, C)` pooled image feature.
        project: `(backbone, feature) -> (B, D)` embedding before its L2
            normalisation.
        mode: preprocessing mode of the family's presets' image converters.
        default_head: "classifier" or "embedding".
        unroll: `backbone -> call` for `graph.replay` of any graph that
            holds the backbone (a keras-hub task), which unrolls its
            encoder's loop; None where the blocks are layers already.
    """
    tokens: Optional[Callable]
    feature: Callable
    project: Callable
    mode: str
    default_head: str
    unroll: Optional[Callable] = None


def _unroller(encoder_class, blocks):
    """`unroll` of a backbone whose `encoder_class` layer loops over its
    blocks: `blocks(backbone, encoder, args, kwargs)` calls them one by
    one in its place."""
    def unroll(backbone):
        def call(layer, args, kwargs):
            if isinstance(layer, encoder_class):
                return blocks(backbone, layer, args, kwargs)
            return layer(*args, **kwargs)
        return call
    return unroll


def _replayed_tokens(unroll):
    def tokens(backbone, images):
        (output,) = graph.replay(backbone, [images], call=unroll(backbone))
        return output
    return tokens


def _vit_blocks(backbone, encoder, args, kwargs):
    x = encoder.dropout(args[0])
    for block in encoder.encoder_layers:
        x = block(x)
    return encoder.layer_norm(x)


def _dinov2_blocks(backbone, encoder, args, kwargs):
    x, stages = args[0], {}
    for index, block in enumerate(encoder.layers, start=1):
        x = block(x)
        stages[f"stage{index}"] = x
    return x, stages


def _deit_blocks(backbone, encoder, args, kwargs):
    # A DeiT block returns (tokens, None), which no functional graph holds.
    x = args[0]
    for block in encoder.encoder_layers:
        x = FirstOutput(block)(x)
    return encoder.layer_norm(x)


def _dinov3_blocks(backbone, encoder, args, kwargs):
    # Each block makes its own rotary position embeddings.
    x, stages = args[0], {}
    image_size = image_shape(backbone)[:2]
    for index, block in enumerate(encoder.layers, start=1):
        x = RotaryBlock(block, backbone.rope_embedding, image_size,
                        kwargs["num_prefix_tokens"])(x)
        stages[f"stage{index}"] = x
    return x, stages


def _vision_encoder(backbone):
    """A two-tower backbone's image tower, or `backbone` when it is one."""
    return getattr(backbone, "vision_encoder", backbone)


def _clip_tokens(backbone, images):
    output = _vision_encoder(backbone)({"images": images})
    return output["sequence_output"] if isinstance(output, dict) else output


def _class_token_feature(tokens):
    def feature(backbone, images):
        x = tokens(backbone, images)
        if getattr(backbone, "use_class_token", True):
            return ClassToken(name="class_token")(x)
        return keras.layers.GlobalAveragePooling1D(name="pool")(x)
    return feature


def _siglip_feature(embedding_class):
    """SigLIP's `feature`: its vision encoder, the patch embedding's tokens
    declared as many as they are (`TokenCount`). keras-hub 0.32's SigLIPVisionEmbedding
    declares h·w + 1 tokens (CLIP's, with a class token) for the h·w it
    computes, and every shape after it inherits the error."""
    def feature(backbone, images):
        def call(layer, args, kwargs):
            output = layer(*args, **kwargs)
            if not isinstance(layer, embedding_class):
                return output
            return TokenCount(layer.num_positions, name=f"{layer.name}_tokens")(output)
        (output,) = graph.replay(_vision_encoder(backbone), [images], call=call)
        return output
    return feature


def _clip_projection(backbone, feature):
    projection = getattr(backbone, "vision_projection", None)
    return feature if projection is None else projection(feature)


def _identity(backbone, feature):
    return feature


def families():
    """{keras-hub backbone class: `HubFamily`}."""
    keras_hub = import_keras_hub()
    models, layers = keras_hub.models, keras_hub.src.models
    encoders = {"vit": (layers.vit.vit_layers.ViTEncoder, _vit_blocks),
                "dinov2": (layers.dinov2.dinov2_layers.DINOV2Encoder, _dinov2_blocks),
                "deit": (layers.deit.deit_layers.DeiTEncoder, _deit_blocks),
                "dinov3": (layers.dinov3.dinov3_layers.DINOV3Encoder, _dinov3_blocks)}

    def unrolled(name, mode, default_head):
        unroll = _unroller(*encoders[name])
        tokens = _replayed_tokens(unroll)
        return HubFamily(tokens, _class_token_feature(tokens), _identity, mode, default_head,
                         unroll)
    clip = HubFamily(_clip_tokens, _class_token_feature(_clip_tokens), _clip_projection,
                     "clip", "embedding")
    siglip = HubFamily(None, _siglip_feature(layers.siglip.siglip_layers.SigLIPVisionEmbedding),
                       _identity, "tf", "embedding")
    return {
        models.ViTBackbone: unrolled("vit", "tf", "classifier"),
        models.DINOV2Backbone: unrolled("dinov2", "torch", "embedding"),
        models.DINOV3Backbone: unrolled("dinov3", "torch", "embedding"),
        models.DeiTBackbone: unrolled("deit", "torch", "classifier"),
        models.CLIPBackbone: clip,
        models.CLIPVisionEncoder: clip,
        models.SigLIPBackbone: siglip,
        models.SigLIPVisionEncoder: siglip,
    }


def family_of(backbone):
    """The `HubFamily` of keras-hub `backbone`; TfcafError naming those
    tfcaf reads."""
    table = families()
    for cls, family in table.items():
        if isinstance(backbone, cls):
            return family
    raise TfcafError(f"keras_hub backbone {backbone.name} is a {type(backbone).__name__}; "
                     f"tfcaf reads {', '.join(cls.__name__ for cls in table)}")


def image_shape(backbone):
    """(H, W, 3) of `backbone`'s image input."""
    tower = _vision_encoder(backbone)
    return tuple(tower.image_shape) if hasattr(tower, "image_shape") else \
        tuple(tower.inputs[0].shape[1:])
