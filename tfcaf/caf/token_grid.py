"""Vision Transformer tokens as a feature map: a layer's (B, N, C) patch
tokens seen as the (B, h, w, C) grid of the patches they came from, so that
the split, L2-CAF's filter and the CAM family work on them unchanged.

The grid is the image's: h · w = N with h / w = H / W (a square image: h =
w = √N), in row-major order, as a patch embedding (a strided convolution
reshaped to tokens) lays them out. A sequence that also holds class,
distillation or register tokens is refused for now: the rest of the
network needs them beside the filtered patches, and the head takes only
the grid.
"""

import math

import keras

from tfcaf.errors import TfcafError

MAX_EXTRA_TOKENS = 8


def grid_shape(layer, tokens_shape, image_shape):
    """(h, w) of the patch grid of a (B, N, C) token output.

    Args:
        layer: the layer's name, for the message.
        tokens_shape: (B, N, C).
        image_shape: the model's input shape (B, H, W, 3) (H, W may be None).

    Raises:
        TfcafError: N tokens are no patch grid of the image; the message
            says how many extra (class, register) tokens N holds when the
            rest would be one.
    """
    count = tokens_shape[1]
    height, width = image_shape[1:3]
    if count is None:
        raise TfcafError(f"layer '{layer}' outputs tokens of unknown number (shape "
                         f"{tuple(tokens_shape)}); give the model a fixed input size")
    grid = _grid(count, height, width)
    if grid:
        return grid
    extra = next((k for k in range(1, MAX_EXTRA_TOKENS + 1) if _grid(count - k, height, width)),
                 None)
    if extra:
        h, w = _grid(count - extra, height, width)
        raise TfcafError(f"layer '{layer}' outputs {count} tokens: a {h}x{w} patch grid and "
                         f"{extra} class or register token(s); tfcaf splits only at token "
                         "layers without them for now (a ViT that pools its patch tokens, "
                         "or a layer before the class token is added)")
    raise TfcafError(f"layer '{layer}' outputs {count} tokens, which are no patch grid of "
                     f"the {height}x{width} input")


def _grid(count, height, width):
    """(h, w) with h · w = `count` and h / w = height / width, or None."""
    if count <= 0:
        return None
    ratio = 1.0 if not height or not width else height / width
    h = round(math.sqrt(count * ratio))
    if h > 0 and count % h == 0 and math.isclose(h / (count // h), ratio, rel_tol=1e-6):
        return h, count // h
    return None


@keras.saving.register_keras_serializable(package="tfcaf")
class TokensToGrid(keras.layers.Layer):
    """(B, h·w, C) tokens -> (B, h, w, C) grid, row-major. Lives only in
    split models.

    Args:
        grid: (h, w).
    """

    def __init__(self, grid, **kwargs):
        super().__init__(**kwargs)
        self.grid = tuple(grid)

    def call(self, tokens):
        return keras.ops.reshape(tokens, (-1,) + self.grid + (tokens.shape[-1],))

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + self.grid + (input_shape[-1],)

    def get_config(self):
        return {**super().get_config(), "grid": list(self.grid)}


@keras.saving.register_keras_serializable(package="tfcaf")
class GridToTokens(keras.layers.Layer):
    """(B, h, w, C) grid -> (B, h·w, C) tokens, row-major: the inverse of
    `TokensToGrid`. Lives only in split models."""

    def call(self, grid):
        return keras.ops.reshape(grid, (-1, grid.shape[1] * grid.shape[2], grid.shape[3]))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1] * input_shape[2], input_shape[3])
