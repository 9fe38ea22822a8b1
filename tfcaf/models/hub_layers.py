"""Adapters of keras-hub Vision Transformer layers to tfcaf's functional
graphs, in which every block is one layer whose input and output are
(B, N, C) tokens, so that a split can cut between any two blocks and the
head runs on the tokens alone (`tfcaf.models.hub_towers`). They wrap
keras-hub's layers and keep their weights; keras-hub itself is needed
only to load the wrapped layers.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfcaf")
class TokenCount(keras.layers.Layer):
    """Tokens unchanged, their number declared: after a layer whose
    `compute_output_shape` states a wrong one (keras-hub 0.32's SigLIP
    patch embedding), so that the shapes after it are right.

    Args:
        count: N, the tokens the input holds.
        **kwargs: standard `keras.layers.Layer` arguments.

    Input shape: (B, N', C), N tokens at run time. Output shape: (B, N, C).
    """

    def __init__(self, count, **kwargs):
        super().__init__(**kwargs)
        self.count = int(count)

    def call(self, tokens):
        return ops.reshape(tokens, (-1, self.count, tokens.shape[-1]))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.count, input_shape[2])

    def get_config(self):
        return {**super().get_config(), "count": self.count}


@keras.saving.register_keras_serializable(package="tfcaf")
class FirstOutput(keras.layers.Wrapper):
    """A layer that returns (tokens, extras) as one that returns the
    tokens: a keras-hub DeiT block, (tokens, attention scores or None),
    so that its output can be a split point and a functional graph can
    hold it.

    Args:
        layer: the wrapped layer; it keeps its weights.
        **kwargs: standard `keras.layers.Layer` arguments (the name: the
            wrapped layer's, unless given).

    Input shape: (B, N, C) tokens. Output shape: (B, N, C).
    """

    def __init__(self, layer, **kwargs):
        kwargs.setdefault("name", layer.name)
        super().__init__(layer, **kwargs)

    def call(self, tokens):
        return self.layer(tokens)[0]

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="tfcaf")
class RotaryBlock(keras.layers.Layer):
    """A keras-hub DINOv3 block with its rotary position embeddings made
    inside: keras-hub computes them once, from the input image tensor
    (its shape only), and hands them to every block, a tensor from before
    any split that a head would lack.

    Args:
        block: the DINOV3Layer; it keeps its weights.
        rope: the backbone's DINOV3RopePositionEmbedding (no weights).
        image_size: (H, W) of the backbone's images, in pixels.
        prefix_tokens: the class and register tokens before the patches.
        **kwargs: standard `keras.layers.Layer` arguments (the name: the
            block's, unless given).

    Input shape: (B, N, C) tokens. Output shape: (B, N, C).
    """

    def __init__(self, block, rope, image_size, prefix_tokens, **kwargs):
        if isinstance(block, dict):
            block, rope = (keras.saving.deserialize_keras_object(x) for x in (block, rope))
        kwargs.setdefault("name", block.name)
        super().__init__(**kwargs)
        self.block, self.rope = block, rope
        self.image_size, self.prefix_tokens = tuple(image_size), int(prefix_tokens)

    def build(self, input_shape):
        if not self.block.built:
            self.block.build(input_shape)

    def call(self, tokens):
        positions = self.rope(ops.zeros((1,) + self.image_size + (3,), tokens.dtype))
        return self.block(tokens, position_embeddings=positions,
                          num_prefix_tokens=self.prefix_tokens)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "image_size": list(self.image_size),
                "prefix_tokens": self.prefix_tokens,
                "block": keras.saving.serialize_keras_object(self.block),
                "rope": keras.saving.serialize_keras_object(self.rope)}
