"""Replay a functional Keras graph on new tensors, inlining nested models.

Keras 3 offers no public way to cut a model at an inner layer or to insert a
layer into an existing graph. Both reduce to walking the graph node by node
and calling each layer again on new tensors, which is what `replay` does.
Nested functional and Sequential models are walked into, so a layer inside a
backbone that is itself a layer of an outer model can be addressed by name.
"""

from typing import NamedTuple

import keras
from keras import tree

from tfcaf.errors import TfcafError

MISSING = object()
"""Marker for a value that is not available in this replay (e.g. computed
before the split point of a head model)."""


class GraphError(TfcafError):
    """A model graph cannot be replayed as asked (names the offending layer)."""


def _functional_of(op):
    """The Functional graph behind a nested model layer, or None for a leaf."""
    if isinstance(op, keras.Sequential):
        functional = getattr(op, "_functional", None)
        if functional is None:
            raise GraphError(
                f"Sequential model '{op.name}' has no defined input; "
                "build it with keras.Input first")
        return functional
    if isinstance(op, keras.Model):
        if not hasattr(op, "_nodes_by_depth"):
            raise GraphError(
                f"model '{op.name}' is a subclassed model; only functional "
                "and Sequential models can be replayed")
        return op
    return None


def _producer_name(tensor):
    history = getattr(tensor, "_keras_history", None)
    return history[0].name if history else "an input"


def replay(model, inputs, overrides=None, call=None):
    """Re-runs `model`'s graph on `inputs` and returns its flat outputs.

    Args:
        model: functional or Sequential Keras model.
        inputs: list of tensors, one per `model.inputs`; an entry may be
            `MISSING`.
        overrides: dict layer name -> tensor used as that layer's output
            instead of calling it (e.g. the input of a head model).
        call: function `(layer, args, kwargs) -> outputs` used to call leaf
            layers; defaults to `layer(*args, **kwargs)`. Lets callers record
            or transform outputs (e.g. insert a layer after a named one).

    Returns:
        A list with one tensor (or `MISSING`) per flat model output.

    Raises:
        GraphError: a layer mixes available and missing inputs, i.e. it reads
            a tensor from before an override point.
    """
    overrides = overrides or {}
    call = call or (lambda layer, args, kwargs: layer(*args, **kwargs))
    graph = _functional_of(model)
    values = {id(x): y for x, y in zip(graph.inputs, inputs)}
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        for node in graph._nodes_by_depth[depth]:
            if node.operation is None or node.is_input:
                continue
            outputs = _replay_node(node, values, overrides, call)
            for x, y in zip(node.outputs, tree.flatten(outputs)):
                values[id(x)] = y
    return [values.get(id(x), MISSING) for x in graph.outputs]


def _replay_node(node, values, overrides, call):
    op = node.operation
    if op.name in overrides:
        return overrides[op.name]
    feeds = [values.get(id(x), MISSING) for x in node.input_tensors]
    missing = [x for x, v in zip(node.input_tensors, feeds) if v is MISSING]
    if _functional_of(op) is not None:
        outs = replay(op, feeds, overrides, call)
        return outs[0] if len(outs) == 1 else outs
    if len(missing) == len(feeds):
        return [MISSING] * len(node.outputs)
    if missing:
        raise GraphError(
            f"layer '{op.name}' reads '{_producer_name(missing[0])}', which "
            "is computed before the split point, so the rest of the model "
            "cannot run from the split alone")
    args, kwargs = node.arguments.fill_in(values)
    return call(op, args, kwargs)


class LeafCall(NamedTuple):
    """One leaf layer call of a replay: `output = layer(*args, **kwargs)`,
    all symbolic."""
    layer: keras.layers.Layer
    args: tuple
    kwargs: dict
    output: object


def leaf_calls(model):
    """Every leaf layer call of a fresh replay of `model`, in execution
    order, as `LeafCall`s; nested models are expanded into their own calls.

    The last one computes the model's output (for a one-output model):
    replay runs the output's node last.
    """
    calls = []
    replay(model, fresh_inputs(model), call=recorder(calls))
    return calls


def recorder(calls):
    """A `call` for `replay` that calls each leaf layer and appends the
    call to the list `calls` as a `LeafCall`."""
    def record(layer, args, kwargs):
        out = layer(*args, **kwargs)
        calls.append(LeafCall(layer, tuple(args), dict(kwargs), out))
        return out
    return record


def leaf_layers(model):
    """All (layer, output) pairs of a replay of `model`, in execution order.

    Outputs are symbolic tensors of a fresh replay; nested models are
    expanded into their own layers.
    """
    return [(call.layer, call.output) for call in leaf_calls(model)]


def fresh_inputs(model):
    """New `keras.Input`s shaped like `model.inputs`."""
    graph = _functional_of(model)
    return [keras.Input(shape=x.shape[1:], dtype=x.dtype)
            for x in graph.inputs]
