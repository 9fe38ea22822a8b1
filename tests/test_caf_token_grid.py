"""Vision Transformer patch tokens as feature maps (`tfcaf.caf.token_grid`):
a tiny ViT (patch embedding, 2 pre-norm transformer blocks, mean-pooled
tokens) split at a block's (B, N, C) output. The split reproduces the
model, the methods run on the (h, w) patch grid, a planted token that
carries the whole output is found, and each image's map is its own."""

import keras
import numpy as np
import pytest

import tfcaf
from tfcaf.caf.split import split_model
from tfcaf.caf.token_grid import token_layout
from tfcaf.errors import TfcafError

SIZE, PATCH, DIM = 32, 8, 16
IMAGES = np.random.default_rng(0).uniform(0, 255, (3, SIZE, SIZE, 3)).astype(np.float32)


def _blocks(x, count, first=0):
    for i in range(first, first + count):
        y = keras.layers.LayerNormalization(name=f"norm1_{i}")(x)
        y = keras.layers.MultiHeadAttention(2, DIM // 2, name=f"attention_{i}")(y, y)
        x = keras.layers.Add(name=f"residual_{i}")([x, y])
        y = keras.layers.LayerNormalization(name=f"norm2_{i}")(x)
        y = keras.layers.Dense(2 * DIM, activation="gelu", name=f"mlp1_{i}")(y)
        x = keras.layers.Add(name=f"block_{i}")([x, keras.layers.Dense(DIM,
                                                                        name=f"mlp2_{i}")(y)])
    return x


class PrependTokens(keras.layers.Layer):
    """Learned class and register tokens before the patch tokens, as ViT,
    DeiT and DINOv2 put them.

    Args:
        count: how many.
    """

    def __init__(self, count, **kwargs):
        super().__init__(**kwargs)
        self.count = count

    def build(self, input_shape):
        self.tokens = self.add_weight(shape=(1, self.count, input_shape[-1]),
                                      initializer="random_normal")

    def call(self, patches):
        batch = keras.ops.shape(patches)[0]
        tokens = keras.ops.broadcast_to(self.tokens, (batch, self.count, patches.shape[-1]))
        return keras.ops.concatenate([tokens, patches], axis=1)


def _vit(pooling=None, extra=0):
    """Tiny ViT classifier of 4 classes on (SIZE, SIZE) images; `pooling`:
    a layer from the last block's tokens to (B, DIM) (default: the mean of
    the tokens, or the class token when there are `extra` class and
    register tokens)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(DIM, PATCH, strides=PATCH, name="patch_embedding")(x)
    x = keras.layers.Reshape((-1, DIM), name="tokens")(x)
    if extra:
        x = PrependTokens(extra, name="class_and_registers")(x)
        pooling = pooling or keras.layers.Lambda(lambda t: t[:, 0], name="class_token")
    x = _blocks(x, 2)
    x = keras.layers.LayerNormalization(name="final_norm")(x)
    x = (pooling or keras.layers.GlobalAveragePooling1D(name="pool"))(x)
    return keras.Model(inputs, keras.layers.Dense(4, name="logits")(x))


# Mean-pooled patch tokens, and a class token with two registers before them.
VITS = {"pooled": _vit(), "class_token": _vit(extra=3)}
VIT = VITS["pooled"]


def test_layout_of_tokens_with_and_without_class_and_register_tokens():
    assert token_layout("x", (None, 196, 768), (None, 224, 224, 3)) == (14, 14, 0)
    assert token_layout("x", (None, 392, 768), (None, 224, 448, 3)) == (14, 28, 0)
    assert token_layout("x", (None, 197, 768), (None, 224, 224, 3)) == (14, 14, 1)
    assert token_layout("x", (None, 261, 384), (None, 224, 224, 3)) == (16, 16, 5)
    with pytest.raises(TfcafError, match="layer 'x' outputs 250 tokens, which are no patch "
                                         "grid of the 224x224 input"):
        token_layout("x", (None, 250, 768), (None, 224, 224, 3))


@pytest.mark.parametrize("kind", VITS)
def test_a_split_at_a_block_reproduces_the_model(kind):
    vit, extra = VITS[kind], 3 if kind == "class_token" else 0
    split = split_model(vit, "block_0")
    grid = split.features(IMAGES)
    # The 3 extra tokens' 48 values fill 3 channels of the 16 cells.
    assert tuple(grid.shape) == (3, SIZE // PATCH, SIZE // PATCH, DIM + extra)
    assert split.channels == (DIM if extra else None)
    np.testing.assert_allclose(split.head(grid), vit(IMAGES), rtol=1e-5, atol=1e-5)
    # The grid is the patches' own layout: token k is patch (k // w, k % w).
    tokens = np.asarray(keras.Model(vit.input, vit.get_layer("block_0").output)(IMAGES))
    np.testing.assert_array_equal(np.asarray(grid)[..., :DIM].reshape(3, -1, DIM),
                                  tokens[:, extra:])
    np.testing.assert_array_equal(
        np.asarray(grid)[..., DIM:].reshape(3, -1)[:, :extra * DIM],
        tokens[:, :extra].reshape(3, -1))


@pytest.mark.parametrize("kind", VITS)
def test_the_default_layer_is_the_input_of_the_middle_block(kind):
    # 2 blocks: block ⌈2 / 2⌉ = the first, whose input is the tokens (with
    # the class and register tokens, when there are).
    expected = {"pooled": "tokens", "class_token": "class_and_registers"}[kind]
    assert split_model(VITS[kind]).layer == expected
    four_blocks = keras.Model(VITS[kind].input, _blocks(VITS[kind].get_layer(expected).output,
                                                        4, first=2))
    assert split_model(four_blocks).layer == "block_2"


# L2-CAF at its default iterations: capped early, an image's solve would
# still depend on where its batch stopped (not rounding).
CHEAP = {"scorecam": {"batch_size": 16}}


@pytest.mark.parametrize("kind", VITS)
@pytest.mark.parametrize("method", ["l2caf", pytest.param("l2caf_specific", marks=pytest.mark.slow),
                                    "gradcam", "gradcampp",
                                    "xgradcam", "hirescam", "layercam", "eigencam",
                                    "scorecam", "ablationcam", "saliency"])
def test_methods_give_patch_grid_maps_of_each_image(method, kind):
    vit = VITS[kind]
    result = tfcaf.explain(vit, IMAGES, method=method, layer="block_0", **CHEAP.get(method, {}))
    grid = (SIZE, SIZE) if method == "saliency" else (SIZE // PATCH, SIZE // PATCH)
    assert result.maps.shape == (3,) + grid
    assert result.heatmaps.shape == (3, SIZE, SIZE) and np.isfinite(result.maps).all()
    alone = tfcaf.explain(vit, IMAGES[1:2], method=method, layer="block_0",
                          targets=result.targets[1:2] if result.targets is not None else None,
                          **CHEAP.get(method, {}))
    scale = max(np.abs(result.maps[1]).max(), 1e-30)
    # The float32 rounding of batched attention: up to 1e-3 of the map's
    # range in the class-token ViT's gradients (at most 1e-5), and 1% in
    # L2-CAF, whose L-BFGS line searches carry it into the filter.
    tolerance = 1e-2 if method.startswith("l2caf") else 1e-3
    np.testing.assert_allclose(alone.maps[0], result.maps[1], rtol=1e-4,
                               atol=tolerance * scale)


def test_cam_is_refused_on_tokens():
    with pytest.raises(TfcafError, match="cam"):
        tfcaf.explain(VIT, IMAGES, method="cam", layer="block_0")


@pytest.mark.parametrize("extra", [0, 3])
@pytest.mark.parametrize("method,filter", [("hirescam", None), ("l2caf", "l2norm"),
                                           ("l2caf", "softmax"), ("l2caf", "gauss")])
def test_the_one_token_that_carries_the_output_is_found(method, filter, extra):
    # The head reads patch token 7 alone: patch (1, 3) of the 4 x 4 grid,
    # off centre (where the Gaussian filter starts).
    # (Not Grad-CAM: its pooled weights light every token that shares
    # channels.)
    planted = _vit(pooling=keras.layers.Lambda(lambda tokens: tokens[:, extra + 7],
                                               name="token_7"), extra=extra)
    options = {"filter": filter} if filter else {}
    result = tfcaf.explain(planted, IMAGES, method=method, layer="block_1", **options)
    for raw in np.abs(result.maps):
        assert np.unravel_index(np.argmax(raw), raw.shape) == (1, 3)
