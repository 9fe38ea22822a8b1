"""Split a Keras model at a layer into `features` (image -> A) and `head`
(A -> output) models, the two halves L2-CAF needs."""

import difflib
from dataclasses import dataclass

import keras

from tfcaf import graph
from tfcaf.caf import output_kind, token_grid
from tfcaf.errors import TfcafError


@dataclass
class SplitModel:
    """A model cut at `layer`.

    Attributes:
        features: model images (B, H, W, 3) -> feature map A (B, h, w, C).
        head: model A (B, h, w, C) -> output (B, K); the logits before a
            final softmax or sigmoid when `logits=True` was asked, the
            embedding before a final L2 normalisation with `unnormalized`.
        layer: name of the layer whose output is A.
        dense: when the head is `Dense(GAP(A))` (inference-time identities
            such as Dropout aside, and the Dense linear once a final
            softmax or sigmoid is left out), that Dense layer; CAM needs it,
            and L2-CAF uses it to run each iteration in closed form
            (docs/method.md §1, algebra note).
        final: the `output_kind.FinalLayer` of the whole model: its last
            leaf layer and what it computes.
        channels: at a token layer with class or register tokens, the C
            patch channels of A (B, h, w, C + E), the extra tokens packed
            after them (`token_grid`); None when A is all feature channels.
    """
    features: keras.Model
    head: keras.Model
    layer: str
    dense: keras.layers.Dense | None = None
    final: output_kind.FinalLayer | None = None
    channels: int | None = None


class DenseLogits(keras.layers.Layer):
    """The logits of a Dense layer with a softmax, sigmoid or L2
    normalisation activation: its kernel and bias, no activation. Lives
    only in split heads (never saved).

    Args:
        logits_of: the `keras.layers.Dense` whose weights it uses.
    """

    def __init__(self, logits_of, **kwargs):
        super().__init__(name=f"{logits_of.name}_logits", **kwargs)
        self.logits_of = logits_of

    def call(self, inputs):
        x = keras.ops.matmul(inputs, self.logits_of.kernel)
        return x + self.logits_of.bias if self.logits_of.use_bias else x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.logits_of.units,)


def _leave_out(final, call, logits, unnormalized):
    """The head's output once `final` is left out of the head's last call.

    Args:
        final: the model's `output_kind.FinalLayer`.
        call: the head replay's last `graph.LeafCall`, a call of
            `final.layer`.
        logits, unnormalized: leave out a final softmax or sigmoid, or a
            final L2 normalisation.

    Returns:
        (output tensor, the layer now computing it or None when the head
        ends with the layer's input).
    """
    computes = final.computes
    if not ((logits and computes in output_kind.PROBABILITIES) or
            (unnormalized and computes == output_kind.L2_NORMALIZE)):
        return call.output, call.layer
    if final.dense:
        logits_layer = DenseLogits(call.layer)
        return logits_layer(call.args[0]), logits_layer
    return call.args[0], None


def split_model(model, layer=None, logits=True, unnormalized=False):
    """Cuts `model` so that `head(features(x)) == model(x)`.

    Args:
        model: functional or Sequential Keras model, possibly nesting other
            models (e.g. a `keras.applications` backbone).
        layer: name of the layer whose output becomes the feature map A, at
            any depth of nesting: a 4-D (B, h, w, C) output, or the (B, N, C)
            patch tokens of a Vision Transformer, split as their (h, w)
            grid (`token_grid`). Default: the last layer with a 4-D
            (B, h, w, C) output from which the rest of the model can run;
            in a Vision Transformer of L blocks, the input of block ⌈L / 2⌉
            (`_split_at_default`).
        logits: when the model ends in a softmax or a sigmoid (of any
            layer type, or a Dense layer's activation), the head returns
            the logits before it instead (L2-CAF, CAM and Grad-CAM work on
            logits).
        unnormalized: when the model ends in an L2 normalisation (of any
            layer type: `output_kind`), the head returns the embedding
            before it (embedding Grad-CAM needs it: e·stop_gradient(e) has
            zero gradient through a normalisation).

    Returns:
        A `SplitModel`.

    Raises:
        TfcafError: unknown layer name, or a layer after which the model
            still needs earlier tensors (a skip connection over the cut).
    """
    check_model(model)
    calls = graph.leaf_calls(model)
    if layer is not None and not isinstance(layer, str):
        # An index would be ambiguous: into model.layers, or into the
        # layers of the nested models a name can reach?
        raise TfcafError(f"layer must be a layer name (str), or None for the last 4-D layer; "
                         f"got {_short(layer)}; e.g. layer="
                         f"'{_last_4d_name(calls)}'")
    strip = (output_kind.final_layer(calls[-1]), logits, unnormalized)
    if layer is None:
        return _split_at_default(model, calls, strip)
    for call in calls:
        if call.layer.name == layer:
            return _split(model, layer, call.output, strip)
    raise TfcafError(_no_such_layer(model, calls, layer))


def check_model(model):
    """`TfcafError` unless `model` is a Keras model with one input and one
    output (the message names what it is instead)."""
    if not isinstance(model, keras.Model):
        hint = " (load a file with tfcaf.applications.load_model)" \
            if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__") else ""
        raise TfcafError(f"model must be a keras.Model, got {_short(model)}{hint}")
    if len(getattr(model, "inputs", None) or []) != 1 or \
            len(getattr(model, "outputs", None) or []) != 1:
        raise TfcafError(
            f"model '{model.name}' must have exactly one input and one output")


def _short(value):
    """`value` for a one-line message: its repr when short, and its type."""
    text = repr(value)
    shown = text if len(text) <= 60 and "\n" not in text else "a value"
    return f"{shown} ({type(value).__name__})"


def _names_4d(calls):
    """Names of the layers with a 4-D output, in call order."""
    return [c.layer.name for c in calls
            if keras.backend.is_keras_tensor(c.output) and len(c.output.shape) == 4]


def _last_4d_name(calls):
    return (_names_4d(calls) or ["..."])[-1]


def _input_names(model):
    """Names of the input layers of `model` and of the models nested in it."""
    names = {t._keras_history[0].name for t in getattr(model, "inputs", None) or []
             if getattr(t, "_keras_history", None)}
    for inner in model.layers:
        if isinstance(inner, keras.Model):
            names |= _input_names(inner)
    return names


def _no_such_layer(model, calls, layer):
    """The message for a `layer` name no leaf call of `model` has."""
    if layer in _input_names(model):
        return (f"layer '{layer}' is the input of model '{model.name}', not a feature map; "
                f"split at a layer that computes one (e.g. '{_last_4d_name(calls)}')")
    names = [call.layer.name for call in calls]
    close = difflib.get_close_matches(layer, names, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else \
        f"; its last 4-D layers are {', '.join(_names_4d(calls)[-3:])}"
    return f"model '{model.name}' has no layer '{layer}'{hint}"


def _split_at_default(model, calls, strip):
    """The split at the last 4-D layer after which the rest of the model
    can run; in a Vision Transformer of L blocks past it, at the input of
    block ⌈L / 2⌉ (the token layer with ⌊L / 2⌋ + 1 attentions after it).

    Measured on a ViT trained on the digits (bench/vit_placement.py,
    docs/method.md §1): L2-CAF localizes worst at the last block's input
    and best at the middle block's. Scaling a token before a pre-norm block
    changes what its attention reads only through the residual stream, so
    one block after the filter sees it hardly at all.
    """
    token_splits = []  # (attentions in the head, split), last layer first
    last_4d = None
    for call in reversed(calls):
        out = call.output
        rank = len(out.shape) if keras.backend.is_keras_tensor(out) else 0
        if rank not in (3, 4):
            continue
        try:
            split = _split(model, call.layer.name, out, strip)
        except (graph.GraphError, TfcafError):
            continue
        if rank == 4:
            last_4d = split
            break
        token_splits.append((sum(map(_mixes_tokens, split.head.layers)), split))
    blocks = max((count for count, _ in token_splits), default=0)
    if blocks:
        return next(split for count, split in token_splits if count >= blocks // 2 + 1)
    if last_4d is not None:
        return last_4d
    if token_splits:
        return token_splits[0][1]
    raise TfcafError(
        f"model '{model.name}' has no layer with a 4-D (B, h, w, C) output or (B, N, C) "
        "patch tokens after which the rest of the model can run on its own")


def _mixes_tokens(layer):
    """Whether `layer` (of a head's graph) may mix tokens: it is or holds
    an attention layer, or a layer of neither Keras nor tfcaf (a library's
    transformer block, possibly wrapped by tfcaf). Once per layer, however
    many of them it holds."""
    def foreign(inner):
        module = type(inner).__module__
        return isinstance(inner, keras.layers.MultiHeadAttention) or (
            not module.startswith(("keras.", "tfcaf.")) and not isinstance(inner, keras.Model))
    return any(map(foreign, layer._flatten_layers()))


def _split(model, name, symbolic_output, strip):
    """`SplitModel` at layer `name` (output `symbolic_output`); `strip` is
    (final layer, logits, unnormalized) for `_leave_out`."""
    rank = len(symbolic_output.shape) if keras.backend.is_keras_tensor(symbolic_output) else 0
    if rank not in (3, 4):
        raise TfcafError(
            f"layer '{name}' has output shape "
            f"{getattr(symbolic_output, 'shape', None)}; L2-CAF needs a 4-D "
            "(B, h, w, C) feature map (or (B, N, C) patch tokens)")
    # Patch tokens are split as their (h, w) grid, extra tokens packed
    # after the patch channels (`token_grid`).
    layout = token_grid.token_layout(name, symbolic_output.shape, model.inputs[0].shape) \
        if rank == 3 else None
    if layout is None:
        head_input = keras.Input(shape=symbolic_output.shape[1:], dtype=symbolic_output.dtype)
        replaced = head_input
    else:
        *grid, extra = layout
        channels = symbolic_output.shape[-1]
        packed = token_grid.extra_channels(grid, extra, channels) if extra else 0
        head_input = keras.Input(shape=tuple(grid) + (channels + packed,),
                                 dtype=symbolic_output.dtype)
        replaced = token_grid.GridToTokens(channels, extra)(head_input)
    head_calls = []
    try:
        (head_out,) = graph.replay(model, [graph.MISSING], overrides={name: replaced},
                                   call=graph.recorder(head_calls))
    except graph.GraphError as err:
        raise graph.GraphError(
            f"cannot split model '{model.name}' at layer '{name}': {err}"
        ) from None
    if head_out is graph.MISSING:
        raise graph.GraphError(
            f"cannot split model '{model.name}' at layer '{name}': the "
            "output does not depend on it")
    head_layers = [call.layer for call in head_calls]
    final = strip[0]
    # The output is computed by the final leaf call (also in a nested
    # model), so leaving its layer out only replaces the head's output; the
    # call itself stays behind as a branch that the head model drops.
    if head_calls and head_calls[-1].layer is final.layer and \
            head_calls[-1].output is head_out:
        head_out, kept = _leave_out(final, head_calls[-1], *strip[1:])
        head_layers[-1:] = [] if kept is None else [kept]
    inputs = graph.fresh_inputs(model)
    captured = {}

    def capture(layer, args, kwargs):
        out = layer(*args, **kwargs)
        if layer.name == name:
            captured["A"] = out
        return out

    graph.replay(model, inputs, call=capture)
    feature_map = captured["A"] if layout is None else \
        token_grid.TokensToGrid(grid, extra)(captured["A"])
    features = keras.Model(inputs[0], feature_map, name=f"{model.name}_features")
    head = keras.Model(head_input, head_out, name=f"{model.name}_head")
    return SplitModel(features=features, head=head, layer=name,
                      dense=_gap_dense(head_layers), final=final,
                      channels=channels if layout is not None and extra else None)


_INFERENCE_IDENTITIES = (keras.layers.Dropout, keras.layers.SpatialDropout2D,
                         keras.layers.GaussianNoise, keras.layers.Identity)


def _gap_dense(head_layers):
    """The Dense layer of a `Dense(GAP(A))` head, else None.

    Args:
        head_layers: the head's leaf layers in call order, a left-out final
            layer removed and a Dense layer whose activation was left out
            replaced by its `DenseLogits`.
    """
    kept = [l for l in head_layers if not isinstance(l, _INFERENCE_IDENTITIES)]
    if len(kept) != 2:
        return None
    gap, dense = kept
    if not isinstance(gap, keras.layers.GlobalAveragePooling2D) or \
            gap.keepdims or gap.data_format != "channels_last":
        return None
    if isinstance(dense, DenseLogits):
        return dense.logits_of
    linear = isinstance(dense, keras.layers.Dense) and \
        dense.activation is keras.activations.linear
    return dense if linear else None
