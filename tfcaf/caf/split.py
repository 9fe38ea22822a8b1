"""Split a Keras model at a layer into `features` (image -> A) and `head`
(A -> output) models, the two halves L2-CAF needs."""

import difflib
from dataclasses import dataclass

import keras

from tfcaf import graph
from tfcaf.errors import TfcafError


@dataclass
class SplitModel:
    """A model cut at `layer`.

    Attributes:
        features: model images (B, H, W, 3) -> feature map A (B, h, w, C).
        head: model A (B, h, w, C) -> output (B, K); logits when the
            original output was a softmax and `logits=True` was asked.
        layer: name of the layer whose output is A.
        dense: when the head is `Dense(GAP(A))` (inference-time identities
            such as Dropout aside, and the Dense linear or a stripped
            softmax), that Dense layer; CAM needs it, and L2-CAF uses it to
            run each iteration in closed form (docs/method.md §1, algebra note).
    """
    features: keras.Model
    head: keras.Model
    layer: str
    dense: keras.layers.Dense | None = None


class DenseLogits(keras.layers.Layer):
    """The logits of a softmax Dense layer: its kernel and bias, no
    activation. Lives only in split heads (never saved).

    Args:
        logits_of: the softmax `keras.layers.Dense` whose weights it uses.
    """

    def __init__(self, logits_of, **kwargs):
        super().__init__(name=f"{logits_of.name}_logits", **kwargs)
        self.logits_of = logits_of

    def call(self, inputs):
        x = keras.ops.matmul(inputs, self.logits_of.kernel)
        return x + self.logits_of.bias if self.logits_of.use_bias else x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.logits_of.units,)


def _call_output_layer(layer, args, kwargs, logits, unnormalized):
    """Calls the model's last layer, leaving out a final softmax (`logits`)
    or a final L2 normalisation (`unnormalized`)."""
    if unnormalized and isinstance(layer, keras.layers.UnitNormalization):
        return args[0]
    if logits:
        activation = getattr(layer, "activation", None)
        if activation is keras.activations.softmax:
            if isinstance(layer, keras.layers.Activation):
                return args[0]
            if isinstance(layer, keras.layers.Dense):
                return DenseLogits(layer)(args[0])
    return layer(*args, **kwargs)


def split_model(model, layer=None, logits=True, unnormalized=False):
    """Cuts `model` so that `head(features(x)) == model(x)`.

    Args:
        model: functional or Sequential Keras model, possibly nesting other
            models (e.g. a `keras.applications` backbone).
        layer: name of the layer whose output becomes the feature map A, at
            any depth of nesting. Default: the last layer with a 4-D
            (B, h, w, C) output from which the rest of the model can run.
        logits: when the model ends in a softmax, the head returns the
            pre-softmax logits instead (L2-CAF and Grad-CAM work on logits).
        unnormalized: when the model ends in a `UnitNormalization`, the head
            returns the embedding before it (embedding Grad-CAM needs it:
            e·stop_gradient(e) has zero gradient through a normalisation).

    Returns:
        A `SplitModel`.

    Raises:
        TfcafError: unknown layer name, or a layer after which the model
            still needs earlier tensors (a skip connection over the cut).
    """
    if len(getattr(model, "inputs", None) or []) != 1 or \
            len(getattr(model, "outputs", None) or []) != 1:
        raise TfcafError(
            f"model '{model.name}' must have exactly one input and one output")
    calls = graph.leaf_layers(model)
    last = calls[-1][0].name
    if layer is None:
        return _split_at_last_4d(model, calls, (logits, unnormalized), last)
    for candidate, out in calls:
        if candidate.name == layer:
            return _split(model, layer, out, (logits, unnormalized), last)
    names = [c.name for c, _ in calls]
    close = difflib.get_close_matches(layer, names, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise TfcafError(f"model '{model.name}' has no layer '{layer}'{hint}")


def _split_at_last_4d(model, calls, strip, last):
    for candidate, out in reversed(calls):
        if not keras.backend.is_keras_tensor(out) or len(out.shape) != 4:
            continue
        try:
            return _split(model, candidate.name, out, strip, last)
        except graph.GraphError:
            continue
    raise TfcafError(
        f"model '{model.name}' has no layer with a 4-D (B, h, w, C) output "
        "after which the rest of the model can run on its own")


def _split(model, name, symbolic_output, strip, last):
    if not keras.backend.is_keras_tensor(symbolic_output) or \
            len(symbolic_output.shape) != 4:
        raise TfcafError(
            f"layer '{name}' has output shape "
            f"{getattr(symbolic_output, 'shape', None)}; L2-CAF needs a 4-D "
            "(B, h, w, C) feature map")
    head_input = keras.Input(shape=symbolic_output.shape[1:],
                             dtype=symbolic_output.dtype)
    head_layers = []

    def call(layer, args, kwargs):
        head_layers.append(layer)
        if layer.name == last:
            return _call_output_layer(layer, args, kwargs, *strip)
        return layer(*args, **kwargs)

    try:
        (head_out,) = graph.replay(model, [graph.MISSING],
                                   overrides={name: head_input}, call=call)
    except graph.GraphError as err:
        raise graph.GraphError(
            f"cannot split model '{model.name}' at layer '{name}': {err}"
        ) from None
    if head_out is graph.MISSING:
        raise graph.GraphError(
            f"cannot split model '{model.name}' at layer '{name}': the "
            "output does not depend on it")
    inputs = graph.fresh_inputs(model)
    captured = {}

    def capture(layer, args, kwargs):
        out = layer(*args, **kwargs)
        if layer.name == name:
            captured["A"] = out
        return out

    graph.replay(model, inputs, call=capture)
    features = keras.Model(inputs[0], captured["A"],
                           name=f"{model.name}_features")
    head = keras.Model(head_input, head_out, name=f"{model.name}_head")
    return SplitModel(features=features, head=head, layer=name,
                      dense=_gap_dense(head_layers, strip[0]))


_INFERENCE_IDENTITIES = (keras.layers.Dropout, keras.layers.SpatialDropout2D,
                         keras.layers.GaussianNoise, keras.layers.Identity)


def _gap_dense(head_layers, logits):
    """The Dense layer of a `Dense(GAP(A))` head, else None."""
    kept = [l for l in head_layers if not isinstance(l, _INFERENCE_IDENTITIES)]
    if len(kept) != 2:
        return None
    gap, dense = kept
    if not isinstance(gap, keras.layers.GlobalAveragePooling2D) or \
            gap.keepdims or gap.data_format != "channels_last" or \
            not isinstance(dense, keras.layers.Dense):
        return None
    linear = dense.activation is keras.activations.linear or (
        logits and dense.activation is keras.activations.softmax)
    return dense if linear else None
