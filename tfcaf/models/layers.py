"""Serializable Keras layers shared by the tfcaf backbones: in-model image
preprocessing, Caffe-style local response normalization (GoogLeNet) and the
attention-based dropout layer ADL (Choe & Shim, CVPR 2019; docs/method.md §3),
and the class-token pooling of Vision Transformer heads.
"""

import keras
import tensorflow as tf
from keras import ops

from tfcaf.models.preprocessing import check_mode, preprocess_pixels
from tfcaf.errors import TfcafError


def _require_4d(layer, input_shape):
    if len(input_shape) != 4:
        raise TfcafError(
            f"layer '{layer.name}' ({type(layer).__name__}) expects a 4-D "
            f"(B, H, W, C) input, got shape {tuple(input_shape)}")


@keras.saving.register_keras_serializable(package="tfcaf")
class ImagePreprocessing(keras.layers.Layer):
    """Maps raw RGB pixels to what a backbone was trained on.

    Every tfcaf model starts with this layer, so that it takes raw RGB
    pixels, float32 in [0, 255], and needs no outside preprocessing when
    served or visualized.

    Args:
        mode: a key of `tfcaf.models.preprocessing.MODES`: "caffe" (RGB ->
            BGR, minus the ImageNet BGR means: ResNet50, VGG16, Caffe
            GoogLeNet), "torch", "tf", "unit" (x / 255: tiny_resnet),
            "none" or "clip" (CLIP's means and stds).
        **kwargs: standard `keras.layers.Layer` arguments.

    Input shape: (B, H, W, 3) RGB in [0, 255]. Output shape: (B, H, W, 3).
    """

    def __init__(self, mode="caffe", **kwargs):
        super().__init__(**kwargs)
        self.mode = check_mode(mode)

    def build(self, input_shape):
        _require_4d(self, input_shape)
        if input_shape[-1] != 3:
            raise TfcafError(
                f"layer '{self.name}' expects RGB images (B, H, W, 3), got "
                f"shape {tuple(input_shape)}")

    def call(self, inputs):
        return preprocess_pixels(inputs, self.mode)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="tfcaf")
class LocalResponseNormalization(keras.layers.Layer):
    """Caffe's across-channel LRN, as in the original GoogLeNet.

    `y = x / (k + alpha / size * sum_{window} x**2) ** beta`, the window
    being `size` neighbouring channels centred on each channel. Caffe
    divides `alpha` by the window size; `tf.nn.local_response_normalization`
    does not, hence the conversion in `call`.

    Args:
        size: number of channels in the window (odd).
        alpha: Caffe's scale (before division by `size`).
        beta: exponent.
        k: additive constant.
        **kwargs: standard `keras.layers.Layer` arguments.

    Input shape: (B, H, W, C). Output shape: (B, H, W, C).
    """

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=1.0, **kwargs):
        super().__init__(**kwargs)
        if size < 1 or size % 2 == 0:
            raise TfcafError(
                f"layer '{self.name}': LRN window size must be a positive "
                f"odd number, got {size}")
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def build(self, input_shape):
        _require_4d(self, input_shape)

    def call(self, inputs):
        # float32 inside: the squared-sum window overflows in float16.
        y = tf.nn.local_response_normalization(
            tf.cast(inputs, "float32"), depth_radius=self.size // 2,
            bias=self.k, alpha=self.alpha / self.size, beta=self.beta)
        return tf.cast(y, inputs.dtype)

    def get_config(self):
        return {**super().get_config(), "size": self.size,
                "alpha": self.alpha, "beta": self.beta, "k": self.k}


@keras.saving.register_keras_serializable(package="tfcaf")
class ADL(keras.layers.Layer):
    """Attention-based Dropout Layer (Choe & Shim, CVPR 2019).

    attention = channel mean of the input, (B, H, W, 1); drop mask = 1
    where attention < gamma * (the image's max attention), else 0, so
    applying it zeroes the most-attended positions; importance map =
    sigmoid(attention). In training, each call applies the drop mask with
    probability `drop_rate`, else the importance map, by multiplication over
    the spatial positions; the choice is one draw per call for the whole
    batch, made in the graph (a fresh draw on every step of a compiled
    `fit`) and independently on each replica of a `tf.distribute` strategy.
    At inference the layer is exactly the identity.

    Args:
        drop_rate: probability of applying the drop mask in a training call.
        gamma: drop threshold as a fraction of the per-image max attention
            (0.9 for ResNet-50, 0.8 for VGG in the paper).
        seed: int seed of the layer's random stream, or None.
        **kwargs: standard `keras.layers.Layer` arguments.

    Input shape: (B, H, W, C). Output shape: (B, H, W, C).
    """

    def __init__(self, drop_rate=0.75, gamma=0.9, seed=None, **kwargs):
        super().__init__(**kwargs)
        for arg, value in (("drop_rate", drop_rate), ("gamma", gamma)):
            if not 0.0 <= value <= 1.0:
                raise TfcafError(
                    f"layer '{self.name}': {arg} must be in [0, 1], got "
                    f"{value}")
        self.drop_rate, self.gamma, self.seed = drop_rate, gamma, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        _require_4d(self, input_shape)

    def maps(self, inputs):
        """The drop mask and the importance map of `inputs`.

        Args:
            inputs: feature map (B, H, W, C).

        Returns:
            (drop_mask, importance_map), each (B, H, W, 1) in the input dtype.
        """
        attention = ops.mean(inputs, axis=-1, keepdims=True)
        peak = ops.max(attention, axis=(1, 2), keepdims=True)
        drop_mask = ops.cast(attention < self.gamma * peak, inputs.dtype)
        return drop_mask, ops.sigmoid(attention)

    def call(self, inputs, training=False):
        if not training:
            return inputs
        drop_mask, importance_map = self.maps(inputs)
        use_drop = self._uniform_draw() < self.drop_rate
        return inputs * ops.where(use_drop, drop_mask, importance_map)

    def _uniform_draw(self):
        """One U[0, 1) number per call and per replica."""
        seed = self.seed_generator.next()
        # The generator's state is mirrored, so every replica would draw the
        # same number; folding in the replica id makes the draws independent.
        context = tf.distribute.get_replica_context()
        replica = 0 if context is None else context.replica_id_in_sync_group
        seed = tf.random.experimental.stateless_fold_in(seed, replica)
        return tf.random.stateless_uniform([], seed=seed)

    def get_config(self):
        return {**super().get_config(), "drop_rate": self.drop_rate,
                "gamma": self.gamma, "seed": self.seed}


@keras.saving.register_keras_serializable(package="tfcaf")
class ClassToken(keras.layers.Layer):
    """A Vision Transformer's pooling: the first (class) token.

    Args:
        **kwargs: standard `keras.layers.Layer` arguments.

    Input shape: (B, N, C) tokens, the class token first. Output shape:
    (B, C).
    """

    def call(self, tokens):
        return tokens[:, 0]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

