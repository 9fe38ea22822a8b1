"""What a model's final layer computes, and so what its output is.

Two decisions depend on the model's last leaf layer (docs/method.md §2,
"What is explained"):

- a final softmax or sigmoid is left out of the head, so that L2-CAF, CAM
  and Grad-CAM work on the logits before it (`split.split_model`);
- a final L2 normalisation makes the output an embedding, and Grad-CAM then
  explains the embedding before it (its score e·sg(e) has exactly zero
  gradient through the normalisation).

Whatever layer type computes the function (`Softmax()`, `Activation`,
`UnitNormalization`, a `Lambda` of `tf.math.l2_normalize` or
`keras.ops.normalize`, a custom layer, inside a nested model or not), it is
recognised: known types by their configuration, any other layer without
weights by calling it on a few seeded random vectors and comparing with the
reference function to float tolerance.
"""

import logging
from dataclasses import dataclass

import keras
import numpy as np

from tfcaf import graph
from tfcaf.errors import TfcafError
from tfcaf.names import OUTPUTS

logger = logging.getLogger("tfcaf")

SOFTMAX, SIGMOID, L2_NORMALIZE = "softmax", "sigmoid", "l2_normalize"
# What a final layer may compute that tfcaf leaves out of the head.
PROBABILITIES = (SOFTMAX, SIGMOID)


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


_REFERENCES = {
    SOFTMAX: _softmax,
    SIGMOID: lambda x: 1.0 / (1.0 + np.exp(-x)),
    L2_NORMALIZE: lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True),
}
# Rows at very different scales: x/‖x‖ is scale-free, so a layer that only
# rescales or shifts (LayerNormalization, x * 2) fails the comparison, and
# softmax and sigmoid are probed off their linear range.
_PROBE_SCALES = (0.3, 1.0, 3.0, 30.0)


@dataclass(frozen=True)
class FinalLayer:
    """The leaf layer call that computes a model's output.

    Attributes:
        layer: that leaf layer (possibly inside a nested model).
        computes: `SOFTMAX`, `SIGMOID` or `L2_NORMALIZE` (over the last
            axis) when the layer computes one of them, else None.
        dense: `computes` is the activation of the Dense `layer` (its
            output is computes(x·W + b)); else the whole layer computes it
            from its one input.
    """
    layer: keras.layers.Layer
    computes: str | None = None
    dense: bool = False

    def describe(self):
        """'final layer 'name' is a softmax' and the like, for messages."""
        what = {SOFTMAX: "a softmax", SIGMOID: "a sigmoid",
                L2_NORMALIZE: "an L2 normalisation"}.get(self.computes)
        if what is None:
            return f"final layer '{self.layer.name}' computes no softmax, sigmoid or " \
                "L2 normalisation"
        if self.dense:
            what = f"a Dense layer with {what} activation"
        return f"final layer '{self.layer.name}' is {what}"


def _tolerance(layer):
    dtype = keras.backend.standardize_dtype(layer.compute_dtype)
    return 1e-2 if dtype in ("float16", "bfloat16") else 1e-5


def probe(function, shape, tolerance=1e-5):
    """What `function` computes, found numerically.

    Args:
        function: callable (4, *shape) float32 -> array of the same shape
            (a layer, an activation).
        shape: the shape of one input without the batch axis, all known.
        tolerance: relative and absolute tolerance of the comparison.

    Returns:
        `SOFTMAX`, `SIGMOID` or `L2_NORMALIZE` when `function` equals it
        over the last axis on seeded random inputs, else None (also when
        it cannot be called on such inputs).
    """
    if None in shape:
        return None
    rng = np.random.default_rng(0)
    scales = np.reshape(_PROBE_SCALES, (-1,) + (1,) * len(shape))
    x = (rng.normal(size=(len(_PROBE_SCALES),) + tuple(shape)) * scales).astype(np.float32)
    try:
        y = keras.ops.convert_to_numpy(function(x))
    except Exception:  # noqa: BLE001 - any layer may refuse a foreign input: not a match
        return None
    if y.shape != x.shape:
        return None
    for kind, reference in _REFERENCES.items():
        if np.allclose(y, reference(x.astype(np.float64)), rtol=tolerance, atol=tolerance):
            return kind
    return None


def _of_activation(activation, shape, layer):
    """What an `activation` callable of `layer` computes (None: linear or
    other)."""
    for kind in PROBABILITIES:
        if activation is getattr(keras.activations, kind):
            return kind
    if activation is keras.activations.linear or activation is None:
        return None
    return probe(activation, shape, _tolerance(layer))


def _is_last_axis(axis, rank):
    """Whether `axis` (an int or a list of them) is exactly the last axis."""
    return [a % rank for a in np.atleast_1d(axis)] == [rank - 1]


def _of_layer(layer, shape):
    """What a one-input `layer` whose output has `shape` (batch axis
    included) computes from that input."""
    if isinstance(layer, keras.layers.UnitNormalization):
        return L2_NORMALIZE if _is_last_axis(layer.axis, len(shape)) else None
    if isinstance(layer, keras.layers.Softmax):
        return SOFTMAX if _is_last_axis(layer.axis, len(shape)) else None
    if isinstance(layer, keras.layers.Activation):
        return _of_activation(layer.activation, shape[1:], layer)
    # A layer with weights computes something learned, not a fixed function;
    # it is not called (it may be large).
    if layer.weights:
        return None
    return probe(layer, shape[1:], _tolerance(layer))


def final_layer(call):
    """The `FinalLayer` of a model whose output `call` (a `graph.LeafCall`,
    the last of `graph.leaf_calls(model)`) computes."""
    layer, args, _, output = call
    shape = tuple(getattr(output, "shape", ()))
    if isinstance(layer, keras.layers.Dense):
        return FinalLayer(layer, _of_activation(layer.activation, shape[1:], layer), dense=True)
    one_input = len(args) == 1 and keras.backend.is_keras_tensor(args[0]) and \
        tuple(args[0].shape) == shape and len(shape) >= 2
    return FinalLayer(layer, _of_layer(layer, shape) if one_input else None)


def validate(output):
    """`TfcafError` unless `output` is None or one of `OUTPUTS`."""
    if output is not None and output not in OUTPUTS:
        raise TfcafError(f"output must be one of {', '.join(OUTPUTS)} (or None to "
                         f"guess it), not {output!r}")


def guess(model, final=None):
    """("embedding" | "logits", the reason in words) for `model`.

    Embedding when the final leaf layer is an L2 normalisation (of any
    type) or the final layer's name says "embedding"; else logits.

    Args:
        model: functional or Sequential Keras model.
        final: its `FinalLayer` when known (`SplitModel.final`).
    """
    final = final or final_layer(graph.leaf_calls(model)[-1])
    if final.computes == L2_NORMALIZE:
        return "embedding", final.describe()
    for layer in (model.layers[-1], final.layer):
        if "embedding" in layer.name.lower():
            return "embedding", f"final layer '{layer.name}' is named like an embedding"
    return "logits", final.describe()


def resolve(model, output=None, final=None):
    """The output kind of `model`: `output` when given (validated), else
    `guess`; logs the decision (logger "tfcaf", INFO)."""
    validate(output)
    if output is not None:
        logger.info("output: %s (passed as output=)", output)
        return output
    kind, reason = guess(model, final)
    logger.info("output: %s (%s); pass output= to override", kind, reason)
    return kind
