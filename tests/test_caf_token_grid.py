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
from tfcaf.caf.token_grid import grid_shape
from tfcaf.errors import TfcafError

SIZE, PATCH, DIM = 32, 8, 16
IMAGES = np.random.default_rng(0).uniform(0, 255, (3, SIZE, SIZE, 3)).astype(np.float32)


def _blocks(x, count):
    for i in range(count):
        y = keras.layers.LayerNormalization(name=f"norm1_{i}")(x)
        y = keras.layers.MultiHeadAttention(2, DIM // 2, name=f"attention_{i}")(y, y)
        x = keras.layers.Add(name=f"residual_{i}")([x, y])
        y = keras.layers.LayerNormalization(name=f"norm2_{i}")(x)
        y = keras.layers.Dense(2 * DIM, activation="gelu", name=f"mlp1_{i}")(y)
        x = keras.layers.Add(name=f"block_{i}")([x, keras.layers.Dense(DIM,
                                                                        name=f"mlp2_{i}")(y)])
    return x


def _vit(pooling=None):
    """Tiny ViT classifier of 4 classes on (SIZE, SIZE) images; `pooling`:
    a layer from the last block's tokens to (B, DIM) (default: the mean)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(DIM, PATCH, strides=PATCH, name="patch_embedding")(x)
    x = keras.layers.Reshape((-1, DIM), name="tokens")(x)
    x = _blocks(x, 2)
    x = keras.layers.LayerNormalization(name="final_norm")(x)
    x = (pooling or keras.layers.GlobalAveragePooling1D(name="pool"))(x)
    return keras.Model(inputs, keras.layers.Dense(4, name="logits")(x))


VIT = _vit()


def test_grid_of_tokens_and_the_refusal_of_class_tokens():
    assert grid_shape("x", (None, 196, 768), (None, 224, 224, 3)) == (14, 14)
    assert grid_shape("x", (None, 392, 768), (None, 224, 448, 3)) == (14, 28)
    with pytest.raises(TfcafError, match=r"layer 'x' outputs 197 tokens: a 14x14 patch grid "
                                         r"and 1 class or register token\(s\)"):
        grid_shape("x", (None, 197, 768), (None, 224, 224, 3))
    with pytest.raises(TfcafError, match="outputs 250 tokens, which are no patch grid"):
        grid_shape("x", (None, 250, 768), (None, 224, 224, 3))


def test_a_split_at_a_block_reproduces_the_model():
    split = split_model(VIT, "block_0")
    grid = split.features(IMAGES)
    assert tuple(grid.shape) == (3, SIZE // PATCH, SIZE // PATCH, DIM)
    np.testing.assert_allclose(split.head(grid), VIT(IMAGES), rtol=1e-5, atol=1e-5)
    # The grid is the patches' own layout: token k is patch (k // w, k % w).
    tokens = keras.Model(VIT.input, VIT.get_layer("block_0").output)(IMAGES)
    np.testing.assert_array_equal(np.asarray(grid).reshape(3, -1, DIM), tokens)


# L2-CAF at its default iterations: capped early, an image's solve would
# still depend on where its batch stopped (not rounding).
CHEAP = {"scorecam": {"batch_size": 16}}


@pytest.mark.parametrize("method", ["l2caf", pytest.param("l2caf_specific", marks=pytest.mark.slow),
                                    "gradcam", "gradcampp",
                                    "xgradcam", "hirescam", "layercam", "eigencam",
                                    "scorecam", "ablationcam"])
def test_methods_give_patch_grid_maps_of_each_image(method):
    result = tfcaf.explain(VIT, IMAGES, method=method, layer="block_0", **CHEAP.get(method, {}))
    assert result.maps.shape == (3, SIZE // PATCH, SIZE // PATCH)
    assert result.heatmaps.shape == (3, SIZE, SIZE) and np.isfinite(result.maps).all()
    alone = tfcaf.explain(VIT, IMAGES[1:2], method=method, layer="block_0",
                          targets=result.targets[1:2] if result.targets is not None else None,
                          **CHEAP.get(method, {}))
    scale = max(np.abs(result.maps[1]).max(), 1e-30)
    np.testing.assert_allclose(alone.maps[0], result.maps[1], rtol=1e-4, atol=1e-5 * scale)


def test_cam_is_refused_on_tokens():
    with pytest.raises(TfcafError, match="cam"):
        tfcaf.explain(VIT, IMAGES, method="cam", layer="block_0")


@pytest.mark.parametrize("method", ["hirescam", "l2caf"])
def test_the_one_token_that_carries_the_output_is_found(method):
    # The head reads token 5 alone: patch (1, 1) of the 4 x 4 grid. (Not
    # Grad-CAM: its pooled weights light every token that shares channels.)
    planted = _vit(pooling=keras.layers.Lambda(lambda tokens: tokens[:, 5], name="token_5"))
    result = tfcaf.explain(planted, IMAGES, method=method, layer="block_1",
                           **CHEAP.get(method, {}))
    for raw in np.abs(result.maps):
        assert np.unravel_index(np.argmax(raw), raw.shape) == (1, 1)
