"""Folding a head's linear first layers into per-image precomputed terms
(docs/method.md §1, algebra note, one layer deeper than the closed form).

L2-CAF evaluates `head(A ⊙ c)` hundreds of times for a fixed A. When the
layers that read A are linear in it, their output is linear in the filter c,
and the expensive part can be computed once per image:

- `Conv2D` 1x1 with stride s (a ResNet bottleneck's first convolution, a
  projection shortcut): `conv(A ⊙ c) = c[::s, ::s] ⊙ conv(A) + b`;
- `Flatten -> Dense`: `Dense(flatten(A ⊙ c)) = Σ_p c_p G_p + b` with
  `G_p = A_p W_p` (W_p: the kernel rows of position p);
- `GlobalAveragePooling2D -> Dense`: the same with `G_p = A_p W / (h·w)`.

The rest of the head (the "tail") then runs on the folded layers' outputs.
Anything else reading A (an identity shortcut, a 3x3 convolution) keeps
reading `A ⊙ c`; a head with no foldable reader of A is not folded.
"""

import weakref
from dataclasses import dataclass

import keras
import tensorflow as tf
from keras import tree

from tfcaf import graph
from tfcaf.caf.head_runner import HeadRunner, activate, plain_dense


@dataclass(frozen=True)
class FoldRule:
    """One linear layer reading A, folded.

    Attributes:
        kind: "conv1x1", "flatten_dense" or "gap_dense".
        layer: the linear layer (Conv2D or Dense) whose output is replaced.
        strides: (sh, sw) of a "conv1x1" rule, else (1, 1).
    """
    kind: str
    layer: keras.layers.Layer
    strides: tuple = (1, 1)


@dataclass
class FoldedHead:
    """A head rewritten as folded linear layers followed by a tail model.

    Attributes:
        rules: the folded layers, in the order of the tail's inputs.
        tail: Keras model from `[A ⊙ c] + [output of each rule]` to the
            head's output.
        reads_filtered_map: whether the tail's first input is `A ⊙ c`
            (some reader of A was not folded).
    """
    rules: tuple
    tail: keras.Model
    reads_filtered_map: bool


_CACHE = weakref.WeakKeyDictionary()


def fold_head(head):
    """The `FoldedHead` of a head model (cached per model), or None when no
    layer reading the head's input can be folded."""
    if head not in _CACHE:
        _CACHE[head] = _fold(head)
    return _CACHE[head]


def _rule_for(layer, readers_of):
    """The FoldRule for `layer` reading A directly, or None."""
    if type(layer) is keras.layers.Conv2D and tuple(layer.kernel_size) == (1, 1) and \
            layer.groups == 1 and layer.data_format == "channels_last" and \
            not getattr(layer, "lora_enabled", False):
        return FoldRule("conv1x1", layer, tuple(layer.strides))
    kind = None
    if type(layer) is keras.layers.Flatten and layer.data_format == "channels_last":
        kind = "flatten_dense"
    if type(layer) is keras.layers.GlobalAveragePooling2D and not layer.keepdims and \
            layer.data_format == "channels_last":
        kind = "gap_dense"
    readers = readers_of(layer)
    if kind and len(readers) == 1 and plain_dense(readers[0]):
        return FoldRule(kind, readers[0])
    return None


def _fold(head):
    head_input = graph.fresh_inputs(head)[0]
    calls = []  # (layer, flat input tensors, flat outputs)

    def record(layer, args, kwargs):
        out = layer(*args, **kwargs)
        calls.append((layer, tree.flatten((args, kwargs)), tree.flatten(out)))
        return out

    graph.replay(head, [head_input], call=record)
    counts = {}
    for layer, _, _ in calls:
        counts[layer.name] = counts.get(layer.name, 0) + 1

    def readers_of(layer):
        outs = [o for l, _, outs in calls if l is layer for o in outs]
        return [l for l, ins, _ in calls if any(i is o for i in ins for o in outs)]

    rules = []
    for layer, inputs, _ in calls:
        if not any(i is head_input for i in inputs) or counts[layer.name] != 1:
            continue
        rule = _rule_for(layer, readers_of)
        if rule is not None and counts[rule.layer.name] == 1:
            rules.append(rule)
    if not rules:
        return None
    shapes = {layer.name: outs[0].shape[1:] for layer, _, outs in calls}
    return _with_tail(head, tuple(rules), [shapes[r.layer.name] for r in rules])


def _with_tail(head, rules, shapes):
    """FoldedHead of `rules`: the tail is the head replayed with each rule's
    layer output (of the given shapes, batch left out) replaced by a new
    input."""
    rule_inputs = [keras.Input(shape=shape) for shape in shapes]
    overrides = {r.layer.name: x for r, x in zip(rules, rule_inputs)}
    try:
        (out,) = graph.replay(head, [graph.MISSING], overrides=overrides)
        reads_map = out is graph.MISSING
    except graph.GraphError:  # some layer reads A and a folded output
        reads_map = True
    inputs = rule_inputs
    if reads_map:
        filtered = graph.fresh_inputs(head)[0]
        (out,) = graph.replay(head, [filtered], overrides=overrides)
        inputs = [filtered] + rule_inputs
    tail = keras.Model(inputs, out, name=f"{head.name}_tail")
    return FoldedHead(rules=rules, tail=tail, reads_filtered_map=reads_map)


def precompute(folded, feature_maps):
    """The c-independent part of each rule for (P, h, w, C) feature maps:
    (P, h/s, w/s, F) for "conv1x1", (P, h, w, K) for the Dense rules."""
    _, h, w, channels = feature_maps.shape
    terms = []
    for rule in folded.rules:
        kernel = tf.cast(rule.layer.kernel, tf.float32)
        if rule.kind == "conv1x1":
            sh, sw = rule.strides
            terms.append(tf.einsum("bhwc,cf->bhwf", feature_maps[:, ::sh, ::sw],
                                   kernel[0, 0]))
        elif rule.kind == "flatten_dense":
            per_position = tf.reshape(kernel, (h, w, channels, -1))
            terms.append(tf.einsum("bhwc,hwck->bhwk", feature_maps, per_position))
        else:
            terms.append(tf.einsum("bhwc,ck->bhwk", feature_maps, kernel) / float(h * w))
    return terms


def filtered_outputs(folded, terms, c, filtered_map=None, tail=None, smoothing=None):
    """The head's output for filters c (P, h, w), float32 (P, K).

    Args:
        folded: the `FoldedHead`.
        terms: `precompute(folded, A)` for the same P problems.
        c: (P, h, w) filters.
        filtered_map: A ⊙ c (P, h, w, C), needed when
            `folded.reads_filtered_map`.
        tail: the `HeadRunner` of `folded.tail` (built before a loop that
            calls this; None: built here).
        smoothing: a `smoothing.Smoothing` (calibrating) or
            `smoothing.StandIns` for the head's ReLUs, or None.
    """
    outputs = []
    for rule, term in zip(folded.rules, terms):
        layer = rule.layer
        if rule.kind == "conv1x1":
            sh, sw = rule.strides
            linear = c[:, ::sh, ::sw, None] * term
        else:
            linear = tf.einsum("bhw,bhwk->bk", c, term)
        if layer.use_bias:
            linear = linear + tf.cast(layer.bias, tf.float32)
        outputs.append(tf.cast(activate(layer, layer.activation, linear, smoothing),
                               layer.compute_dtype))
    if folded.reads_filtered_map:
        outputs.insert(0, filtered_map)
    tail = tail or HeadRunner(folded.tail)
    return tf.cast(tail(outputs, smoothing), tf.float32)
