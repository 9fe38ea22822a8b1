"""Running a head (or a folded head's tail) inside the solver loop.

The solver differentiates the head with respect to its input only, once per
iteration. For a Dense layer that gradient is dy·Wᵀ, which TensorFlow's
CPU MatMul kernel computes several times slower as
`matmul(dy, W, transpose_b=True)` (what autodiff emits) than as
`transpose(matmul(W, dy, transpose_b=True))` at the solver's small batch
sizes: 44 ms against 9 ms for 8 × 4096 by 4096 × 4096 on 2 CPU cores,
which made VGG16's fc2 most of an iteration. The layers are therefore
replayed with that gradient; everything else runs as Keras calls it, and
the forward values are unchanged.
"""

import keras
import tensorflow as tf

from tfcaf import graph
from tfcaf.caf.split import DenseLogits


@tf.custom_gradient
def _matmul(x, kernel):
    """x (B, n) · kernel (n, k), with the input gradient taken as
    (kernel · dyᵀ)ᵀ; no kernel gradient (the solver never needs it)."""
    def gradient(dy):
        return tf.transpose(tf.matmul(kernel, dy, transpose_b=True)), None
    return tf.matmul(x, kernel), gradient


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


def _call(layer, args, kwargs):
    parts = _dense_parts(layer)
    if parts is None or len(args) != 1 or kwargs or len(args[0].shape) != 2:
        return layer(*args, **kwargs)
    kernel, bias, activation = parts
    dtype = layer.compute_dtype
    y = _matmul(tf.cast(args[0], dtype), tf.cast(kernel, dtype))
    if bias is not None:
        y = y + tf.cast(bias, dtype)
    return y if activation is None else activation(y)


def run_head(model, inputs):
    """`model(inputs, training=False)` for a one-output model whose value
    is differentiated with respect to `inputs` (a tensor or a list)."""
    feeds = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    (output,) = graph.replay(model, list(feeds), call=_call)
    return output
