"""The L2-CAF objectives over a split model's head (docs/method.md §1), and
how each head is evaluated inside the solver loop."""

import tensorflow as tf

from tfcaf.caf.solver import solve


def filtered_outputs(split, feature_maps):
    """Function c (P, h, w) -> filtered head outputs FT (P, K) for the
    (P, h, w, C) feature maps."""
    dense = split.dense
    if dense is None:
        return lambda c: tf.cast(split.head(
            feature_maps * c[..., None], training=False), tf.float32)
    _, h, w, _ = feature_maps.shape
    kernel = tf.cast(dense.kernel, tf.float32)
    # Dense(GAP(A * c)) = Σ_ij c_ij G_ij + b: G is computed once, so an
    # iteration costs O(h·w·K) instead of a pass through the head.
    g = tf.einsum("bhwc,ck->bhwk", feature_maps, kernel) / float(h * w)
    g = tf.reshape(g, (-1, h * w, kernel.shape[-1]))
    bias = tf.cast(dense.bias, tf.float32) if dense.use_bias else 0.0
    return lambda c: tf.einsum("bp,bpk->bk", tf.reshape(c, (-1, h * w)), g) + bias


def compiles_with_xla(split, config):
    """Whether the solver loop for this head runs under XLA.

    The closed-form loop is a few small ops per iteration, which XLA fuses
    (about 5x faster on a CPU); other heads stay un-compiled because
    arbitrary layers may not compile. XLA has no dynamically sized
    TensorArray, so snapshots run un-compiled.
    """
    return split.dense is not None and not config.snapshot_every


def solve_l2caf(split, feature_maps, targets, params, config):
    """Solves P filter problems on (P, h, w, C) feature maps.

    Args:
        split: the `SplitModel`.
        feature_maps: (P, h, w, C) float32.
        targets: None (class-oblivious) or (P,) int32 class ids
            (class-specific).
        params: (P, ...) initial filter parameters.
        config: `SolverConfig`.

    Returns:
        `solver.Solution`.
    """
    _, h, w, _ = feature_maps.shape
    outputs = filtered_outputs(split, feature_maps)
    if targets is None:
        unfiltered = outputs(tf.ones_like(feature_maps[..., 0]))

        def loss(c):
            return tf.reduce_mean(tf.square(unfiltered - outputs(c)), -1)
    else:
        num_classes = split.head.output.shape[-1]
        signs = 1.0 - 2.0 * tf.one_hot(targets, num_classes)

        def loss(c):
            return tf.reduce_sum(signs * outputs(c), -1)
    return solve(loss, params, h, w, config)
