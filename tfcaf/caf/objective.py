"""The L2-CAF objectives over a split model's head (docs/method.md §1), and
how each head is evaluated inside the solver loop."""

import keras
import tensorflow as tf

from tfcaf.caf import filters, folding, output_kind, token_grid
from tfcaf.caf.head_runner import HeadRunner
from tfcaf.caf.smoothing import SMOOTHING_STEP, Smoothing
from tfcaf.caf.solver import solve
from tfcaf.caf.targets import OUTPUT, as_objective


def _rows_of(tensor, rows):
    """`tensor` restricted to the problems `rows` ((R,) int32; None: all)."""
    return tensor if rows is None else tf.gather(tensor, rows)


def filtered_outputs(split, feature_maps, fold=True):
    """Function (c (R, h, w), rows, smoothing=None) -> filtered head
    outputs FT (R, K) float32 of problems `rows` ((R,) int32 indices into
    the (P, h, w, C) feature maps, or None for all P), with the head's
    ReLUs through `smoothing` (`smoothing.Smoothing` or `StandIns`) if
    given.

    Dense(GAP) heads run in closed form and heads whose first layers are
    linear in A are folded (`folding`), unless `fold` is False; other heads
    are re-run on A ⊙ c.
    """
    dense = split.dense
    if dense is not None and fold:
        _, h, w, _ = feature_maps.shape
        kernel = tf.cast(dense.kernel, tf.float32)
        # Dense(GAP(A * c)) = Σ_ij c_ij G_ij + b: G is computed once, so an
        # iteration costs O(h·w·K) instead of a pass through the head.
        g = tf.einsum("bhwc,ck->bhwk", feature_maps, kernel) / float(h * w)
        g = tf.reshape(g, (-1, h * w, kernel.shape[-1]))
        bias = tf.cast(dense.bias, tf.float32) if dense.use_bias else 0.0
        return lambda c, rows, smoothing=None: tf.einsum(
            "bp,bpk->bk", tf.reshape(c, (-1, h * w)), _rows_of(g, rows)) + bias
    folded = folding.fold_head(split.head) if fold else None
    if folded is None:
        head = HeadRunner(split.head)
        return lambda c, rows, smoothing=None: tf.cast(head(token_grid.filter_patches(
            _rows_of(feature_maps, rows), c, split.channels), smoothing), tf.float32)
    terms = folding.precompute(folded, feature_maps)
    tail = HeadRunner(folded.tail)

    def outputs(c, rows, smoothing=None):
        filtered = None
        if folded.reads_filtered_map:
            filtered = _rows_of(feature_maps, rows) * c[..., None]
        return folding.filtered_outputs(
            folded, [_rows_of(t, rows) for t in terms], c, filtered, tail, smoothing)
    return outputs


def closed_form(split, config):
    """Whether `config` solves this split's head in closed form (a
    Dense(GAP) head, folded)."""
    return split.dense is not None and config.fold


def runs_adam(split, config):
    """Whether optimizer="auto" runs the authors' Adam on this head: in
    closed form, on a head ending in an L2 normalisation, or on a head
    with a convolution in the loop. On a normalised embedding the
    class-oblivious loss is at most 4/K, so the authors' absolute 1e-6
    tolerance stops Adam after ~150-200 iterations, and L-BFGS from 4
    starts was not 2x faster at an intermediate layer. With convolutions
    in the loop L-BFGS from 4 starts was either not 2x faster (VGG-style
    classifier at block2_pool: 1.5x) or above the authors' own spread on
    some images (ADL classifier at stage2_out: 2 of 24, by 5e-6), the
    bars the default must meet (README, "L2-CAF quality and speed")."""
    return closed_form(split, config) or (
        split.final is not None and split.final.computes == output_kind.L2_NORMALIZE) or \
        has_convolution(split.head)


_CONVOLUTIONS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
                 keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D,
                 keras.layers.Conv2DTranspose)


def has_convolution(model):
    """Whether a convolution is among `model`'s layers, nested models
    included."""
    return any(isinstance(layer, _CONVOLUTIONS) or
               (isinstance(layer, keras.Model) and has_convolution(layer))
               for layer in model.layers)


def compiles_with_xla(split, config):
    """Whether the solver loop for this head runs under XLA.

    The closed-form loop is a few small ops per iteration, which XLA fuses
    (about 5x faster on a CPU). Other heads stay un-compiled: arbitrary
    layers may not compile, un-compiled loops evaluate only the still-active
    problems (dynamic shapes, which XLA lacks), and XLA did not pay where
    measured (batch 8, 2 CPU cores, per iteration: VGG16 folded at
    block5_pool 45.6 ms compiled vs 40.9 ms; ResNet50 at conv4_block6_out
    507 ms vs 471 ms). XLA has no dynamically sized TensorArray, so
    snapshots run un-compiled.
    """
    return closed_form(split, config) and not config.snapshot_every


def solve_l2caf(split, feature_maps, targets, params, config):
    """Solves P filter problems on (P, h, w, C) feature maps.

    Args:
        split: the `SplitModel`.
        feature_maps: (P, h, w, C) float32.
        targets: what is explained: a `targets.Objective`, or None
            (class-oblivious) or (P,) int32 class ids (class-specific).
        params: (P, ...) initial filter parameters.
        config: `SolverConfig`.

    Returns:
        `solver.Solution`.
    """
    _, h, w, _ = feature_maps.shape
    config = config.for_head(runs_adam(split, config))
    outputs = filtered_outputs(split, feature_maps, config.fold)
    objective = as_objective(targets)
    unfiltered = None
    if objective.kind == OUTPUT:
        unfiltered = outputs(tf.ones_like(feature_maps[..., 0]), None)

    def loss(c, rows, smoothing=None):
        return objective.rows(rows).l2caf_loss(
            None if unfiltered is None else _rows_of(unfiltered, rows),
            outputs(c, rows, smoothing))
    compact = not compiles_with_xla(split, config)
    return solve(loss, params, h, w, config, compact=compact,
                 smoothed_loss_fns=_smoothed(loss, params, h, w, config))


def _smoothed(loss, params, height, width, config):
    """`loss` with the head's ReLUs smoothed (`smoothing`), calibrated at
    the initial filters, one function per smoothing stage, refining stages
    last (each `SMOOTHING_STEP` times sharper than the one before); empty
    when L-BFGS
    does not smooth or the head has no ReLU that tfcaf runs."""
    if config.optimizer != "lbfgs" or not config.smoothing:
        return ()
    relus = Smoothing(config.smoothing)
    loss(filters.constrain(config.filter, params, height, width), None, relus)
    if not relus.calibrated:
        return ()
    return tuple(
        lambda c, rows, scale=SMOOTHING_STEP ** stage: loss(c, rows, relus.for_rows(rows, scale))
        for stage in range(config.smoothing_stages + config.refine_stages))
