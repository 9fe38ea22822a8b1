"""Running a head (or a folded head's tail) inside the solver loop.

The solver evaluates the head hundreds of times at the solver's small batch
sizes and differentiates it with respect to its input only. For a Dense
layer, TensorFlow's CPU MatMul kernel is several times faster as
`transpose(matmul(M, v, transpose_b=True))` with M the row-major matrix
than in the forms Keras and autodiff emit (2 CPU cores, 8 × 4096 by
4096 × 4096): the forward x·W takes 19 ms as `matmul(x, W)` and 9.5 ms as
(Wᵀ·xᵀ)ᵀ with Wᵀ stored; the input gradient dy·Wᵀ takes 43 ms as
`matmul(dy, W, transpose_b=True)` and 8 ms as (W·dyᵀ)ᵀ. Together that was
most of a VGG16 iteration. `HeadRunner` therefore transposes each Dense
kernel once, outside the loop, and replays Dense layers with both fast
forms; everything else runs as Keras calls it (a Conv2D with a built-in
ReLU is split into convolution and ReLU when the ReLU is smoothed), and
the values are those of the Keras call up to float rounding.
"""

import keras
import tensorflow as tf

from tfcaf import graph
from tfcaf.caf.smoothing import is_relu, relu_input
from tfcaf.caf.split import DenseLogits


@tf.custom_gradient
def _matmul(x, kernel, kernel_t):
    """x (B, n) · kernel (n, k), given kernel_t = kernelᵀ, computed and
    differentiated (for x only: the solver never needs the kernel's
    gradient) in the fast forms."""
    def gradient(dy):
        return tf.transpose(tf.matmul(kernel, dy, transpose_b=True)), None, None
    return tf.transpose(tf.matmul(kernel_t, x, transpose_b=True)), gradient


def plain_dense(layer):
    """Whether `layer` is a Dense layer computing x·W + b exactly (not a
    subclass, not quantized, no LoRA)."""
    return type(layer) is keras.layers.Dense and \
        getattr(layer, "quantization_mode", None) is None and \
        not getattr(layer, "lora_enabled", False)


def _dense_parts(layer):
    """(kernel, bias or None, activation) of a plain Dense layer (or of the
    logits layer `split_model` puts in place of a softmax Dense), else None."""
    if plain_dense(layer):
        return layer.kernel, layer.bias if layer.use_bias else None, layer.activation
    if isinstance(layer, DenseLogits):
        dense = layer.logits_of
        return dense.kernel, dense.bias if dense.use_bias else None, None
    return None


class HeadRunner:
    """Calls a one-output model whose value is differentiated with respect
    to its inputs, many times.

    Build it where the loop that calls it is built (inside the same
    `tf.function`, before the `tf.while_loop`): the transposed kernels are
    computed here, once, and cost as much memory again as the head's Dense
    kernels.

    Args:
        model: a functional or Sequential Keras model (a head or a tail).
    """

    def __init__(self, model):
        self.model = model
        # id(layer) -> (kernel, kernelᵀ, bias or None, activation or None)
        self._dense = {}
        for layer in model._flatten_layers(include_self=False):
            parts = _dense_parts(layer)
            if parts is not None:
                kernel, bias, activation = parts
                self._dense[id(layer)] = (kernel, tf.transpose(
                    tf.cast(kernel, layer.compute_dtype)), bias, activation)

    def __call__(self, inputs, smoothing=None):
        """`model(inputs, training=False)` for a tensor or a list of them;
        with a `smoothing.Smoothing` or `StandIns`, its ReLUs go
        through it."""
        feeds = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        call = lambda layer, args, kwargs: self._call(layer, args, kwargs, smoothing)  # noqa: E731
        (output,) = graph.replay(self.model, list(feeds), call=call)
        return output

    def _call(self, layer, args, kwargs, smoothing):
        if smoothing is not None:
            pre_activation = relu_input(layer, args, kwargs)
            if pre_activation is not None:
                return smoothing.relu(id(layer), pre_activation)
            if _relu_conv(layer) and len(args) == 1 and not kwargs:
                return smoothing.relu(id(layer), _convolve(layer, args[0]))
        dense = self._dense.get(id(layer))
        if dense is None or len(args) != 1 or kwargs or len(args[0].shape) != 2:
            return layer(*args, **kwargs)
        kernel, kernel_t, bias, activation = dense
        dtype = layer.compute_dtype
        y = _matmul(tf.cast(args[0], dtype), tf.cast(kernel, dtype), kernel_t)
        if bias is not None:
            y = y + tf.cast(bias, dtype)
        return activate(layer, activation, y, smoothing)


def _relu_conv(layer):
    """Whether `layer` is a plain channels-last Conv2D with a built-in ReLU
    (VGG's convolutions), whose ReLU the smoothing phase replaces."""
    return type(layer) is keras.layers.Conv2D and is_relu(layer.activation) and \
        layer.data_format == "channels_last" and \
        getattr(layer, "quantization_mode", None) is None and \
        not getattr(layer, "lora_enabled", False)


def _convolve(layer, x):
    """A Conv2D layer's pre-activation output: convolution plus bias."""
    dtype = layer.compute_dtype
    y = layer.convolution_op(tf.cast(x, dtype), tf.cast(layer.kernel, dtype))
    return y + tf.cast(layer.bias, dtype) if layer.use_bias else y


def activate(layer, activation, x, smoothing):
    """`activation(x)` for `layer`'s built-in activation (None: linear),
    through `smoothing` when it is a ReLU and smoothing is on."""
    if activation is None:
        return x
    if smoothing is not None and is_relu(activation):
        return smoothing.relu(id(layer), x)
    return activation(x)
