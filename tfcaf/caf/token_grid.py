"""Vision Transformer tokens as a feature map: a layer's (B, N, C) patch
tokens seen as the (B, h, w, C) grid of the patches they came from, so that
the split, L2-CAF's filter and the CAM family work on them unchanged.

The grid is the image's: h · w patch tokens with h / w = H / W (a square
image: h = w), in row-major order, as a patch embedding (a strided
convolution reshaped to tokens) lays them out. Class, distillation and
register tokens come first in the sequence (ViT, DeiT, DINOv2 and CLIP put
them there); the rest of the network needs them beside the filtered
patches, so a token feature map carries them packed into E extra channels
of the grid: A = (B, h, w, C + E), with the k · C values of the k extra
tokens laid out row-major over the h · w · E extra cells (zero-padded).
The filter scales only the first C channels (`filter_patches`), and the
methods see only those (`patch_channels`); the head unpacks the sequence
exactly as it was.
"""

import math

import keras

from tfcaf.errors import TfcafError

MAX_EXTRA_TOKENS = 8


def token_layout(layer, tokens_shape, image_shape):
    """(h, w, k) of a (B, N, C) token output: its (h, w) patch grid and the
    k extra (class, register) tokens before it.

    Args:
        layer: the layer's name, for the message.
        tokens_shape: (B, N, C).
        image_shape: the model's input shape (B, H, W, 3) (H, W may be None).

    Raises:
        TfcafError: N tokens are no patch grid of the image, with up to
            `MAX_EXTRA_TOKENS` extra tokens.
    """
    count = tokens_shape[1]
    height, width = image_shape[1:3]
    if count is None:
        raise TfcafError(f"layer '{layer}' outputs tokens of unknown number (shape "
                         f"{tuple(tokens_shape)}); give the model a fixed input size")
    for extra in range(MAX_EXTRA_TOKENS + 1):
        grid = _grid(count - extra, height, width)
        if grid:
            return grid + (extra,)
    raise TfcafError(f"layer '{layer}' outputs {count} tokens, which are no patch grid of "
                     f"the {height}x{width} input (with up to {MAX_EXTRA_TOKENS} class or "
                     "register tokens before it)")


def _grid(count, height, width):
    """(h, w) with h · w = `count` and h / w = height / width, or None."""
    if count <= 0:
        return None
    ratio = 1.0 if not height or not width else height / width
    h = round(math.sqrt(count * ratio))
    if h > 0 and count % h == 0 and math.isclose(h / (count // h), ratio, rel_tol=1e-6):
        return h, count // h
    return None


def extra_channels(grid, extra, channels):
    """E: the channels that hold `extra` tokens of `channels` values over
    an (h, w) `grid`."""
    cells = grid[0] * grid[1]
    return -(-extra * channels // cells)


def patch_channels(feature_maps, channels):
    """The (B, h, w, C) patch tokens of a packed (B, h, w, C + E) map
    (`channels` = C; None: `feature_maps` is all patch channels)."""
    return feature_maps if channels is None else feature_maps[..., :channels]


def filter_patches(feature_maps, c, channels):
    """A ⊙ c for a (B, h, w, C [+ E]) map and (B, h, w) filter `c`: the
    patch channels scaled, the packed extra tokens left as they are."""
    if channels is None:
        return feature_maps * c[..., None]
    return keras.ops.concatenate(
        [feature_maps[..., :channels] * c[..., None], feature_maps[..., channels:]], axis=-1)


@keras.saving.register_keras_serializable(package="tfcaf")
class TokensToGrid(keras.layers.Layer):
    """(B, k + h·w, C) tokens -> (B, h, w, C + E): the patch grid, row-major,
    with the k extra tokens packed into E channels after it (none when k
    is 0). Lives only in split models.

    Args:
        grid: (h, w).
        extra: k, the class/register tokens before the patches.
    """

    def __init__(self, grid, extra=0, **kwargs):
        super().__init__(**kwargs)
        self.grid, self.extra = tuple(grid), int(extra)

    def call(self, tokens):
        channels = tokens.shape[-1]
        patches = keras.ops.reshape(tokens[:, self.extra:], (-1,) + self.grid + (channels,))
        if not self.extra:
            return patches
        packed = extra_channels(self.grid, self.extra, channels)
        flat = keras.ops.reshape(tokens[:, :self.extra], (-1, self.extra * channels))
        cells = self.grid[0] * self.grid[1] * packed
        flat = keras.ops.pad(flat, [[0, 0], [0, cells - self.extra * channels]])
        return keras.ops.concatenate(
            [patches, keras.ops.reshape(flat, (-1,) + self.grid + (packed,))], axis=-1)

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1]
        packed = extra_channels(self.grid, self.extra, channels) if self.extra else 0
        return (input_shape[0],) + self.grid + (channels + packed,)

    def get_config(self):
        return {**super().get_config(), "grid": list(self.grid), "extra": self.extra}


@keras.saving.register_keras_serializable(package="tfcaf")
class GridToTokens(keras.layers.Layer):
    """(B, h, w, C + E) -> (B, k + h·w, C) tokens: the inverse of
    `TokensToGrid`. Lives only in split models.

    Args:
        channels: C, the tokens' width.
        extra: k, the class/register tokens packed after the patch channels.
    """

    def __init__(self, channels, extra=0, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.extra = int(channels), int(extra)

    def call(self, grid):
        cells = grid.shape[1] * grid.shape[2]
        patches = keras.ops.reshape(grid[..., :self.channels], (-1, cells, self.channels))
        if not self.extra:
            return patches
        flat = keras.ops.reshape(grid[..., self.channels:], (-1, cells * (grid.shape[3] -
                                                                          self.channels)))
        extra = keras.ops.reshape(flat[:, :self.extra * self.channels],
                                  (-1, self.extra, self.channels))
        return keras.ops.concatenate([extra, patches], axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.extra + input_shape[1] * input_shape[2], self.channels)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "extra": self.extra}
