"""The batched L2-CAF optimisation: B independent filter problems solved in
one `tf.while_loop`, each stopping on its own rule. Adam/SGD (the authors'
optimisers) live here, L-BFGS in `lbfgs`."""

from dataclasses import replace
from typing import NamedTuple

import tensorflow as tf

from tfcaf.caf import filters, lbfgs, snapshots
from tfcaf.caf.solver_config import SolverConfig
from tfcaf.errors import TfcafError

__all__ = ["Solution", "SolverConfig", "solve"]


class Solution(NamedTuple):
    """Result of `solve` for B problems (a NamedTuple, so it crosses
    `tf.function` boundaries as it is).

    Attributes:
        maps: (B, h, w) heatmaps (|f|/‖f‖ for l2norm, c(f) otherwise).
        iterations: (B,) int32, updates applied before each image stopped.
        losses: (B,) float32, each image's last loss.
        snapshots: (B, S, h, w) heatmaps every `snapshot_every` iterations,
            or None.
        snapshot_losses: (B, S) float32, the loss of each snapshot, or None.
    """
    maps: tf.Tensor
    iterations: tf.Tensor
    losses: tf.Tensor
    snapshots: tf.Tensor | None
    snapshot_losses: tf.Tensor | None = None


_ADAM_BETA1, _ADAM_BETA2, _ADAM_EPSILON = 0.9, 0.999, 1e-8


def _learning_rate(config, step):
    """Linear (polynomial power 1) decay, as tf.train.polynomial_decay."""
    progress = tf.minimum(tf.cast(step, tf.float32),
                          float(config.max_iterations)) / config.max_iterations
    return (config.learning_rate - config.final_rate) * (1.0 - progress) + \
        config.final_rate


def _update(config, step, params, grad, slots, active):
    """One optimiser step, applied only to the still-active problems."""
    rate = _learning_rate(config, step)
    mask = tf.reshape(tf.cast(active, tf.float32),
                      [-1] + [1] * (len(params.shape) - 1))
    if config.optimizer == "sgd":
        return params - mask * rate * grad, slots
    m, v = slots
    new_m = _ADAM_BETA1 * m + (1.0 - _ADAM_BETA1) * grad
    new_v = _ADAM_BETA2 * v + (1.0 - _ADAM_BETA2) * tf.square(grad)
    t = tf.cast(step + 1, tf.float32)
    rate_t = rate * tf.sqrt(1.0 - _ADAM_BETA2 ** t) / (1.0 - _ADAM_BETA1 ** t)
    step_size = rate_t * new_m / (tf.sqrt(new_v) + _ADAM_EPSILON)
    new_params = params - mask * step_size
    keep = mask > 0
    return new_params, (tf.where(keep, new_m, m), tf.where(keep, new_v, v))


def solve(loss_fn, params, height, width, config, compact=True, smoothed_loss_fns=()):
    """Minimises `loss_fn(c(f))` for B independent filters.

    Args:
        loss_fn: `(c, rows) -> losses`: (R, h, w) constrained filters of
            the problems `rows` ((R,) int32 indices, or None for all B) to
            (R,) losses; problem b's loss must depend only on filter b.
        params: initial parameters from `filters.initial_parameters` (drawn
            outside any XLA-compiled caller: XLA's stateless random numbers
            differ from TensorFlow's).
        height, width: h, w of the feature map (Python ints).
        config: a `SolverConfig`.
        compact: evaluate only the still-running problems (dynamic shapes:
            not under XLA).
        smoothed_loss_fns: L-BFGS: `loss_fn` with the head's ReLUs
            smoothed (as `loss_fn`), sharpest last, each minimised in turn
            before `loss_fn`; empty: no smoothing phase.

    Returns:
        A `Solution`. Call inside `tf.function` for speed: the loop is a
        `tf.while_loop`.
    """
    if config.optimizer == "auto":
        raise TfcafError("resolve optimizer='auto' with SolverConfig.for_head first")
    if config.optimizer == "lbfgs":
        return _lbfgs(loss_fn, params, height, width, config, compact, smoothed_loss_fns)
    final = _first_order(loss_fn, params, height, width, config, compact)
    maps = filters.heatmap(config.filter, final["params"], height, width)
    return Solution(maps, final["iterations"], final["losses"],
                    *snapshots.stack(final["snapshots"], config))


# Starts whose final losses are this close (relative) count as tied, and
# the first of them is kept: float rounding, which changes with the batch's
# size, must not pick another of two equally good minima. It is of the
# order of that rounding (the authors' own run moves by 3e-7 to 6e-6 with
# it, README "L2-CAF quality and speed"): the kept start may be this much
# above the best, so a larger margin (1e-5 was tried) costs precision.
_TIE = 1e-6


def best_starts(losses, restarts):
    """(P,) int32 rows of the kept start of each of P problems whose
    `restarts` starts are the adjacent rows p·k .. p·k + k − 1 of
    `losses` (P·k,): the lowest final loss, the first one among ties."""
    losses = tf.reshape(losses, (-1, restarts))
    lowest = tf.reduce_min(losses, axis=1, keepdims=True)
    tied = losses <= lowest + _TIE * tf.abs(lowest) + 1e-12
    return tf.range(tf.shape(losses)[0]) * restarts + tf.cast(
        tf.argmax(tf.cast(tied, tf.int32), axis=1), tf.int32)


def _lbfgs(loss_fn, params, height, width, config, compact, smoothed_loss_fns):
    """L-BFGS: the optional Adam warm-up, the smoothed phases and the exact
    one on every start, then the refining phases on each problem's kept
    start only (the other starts cost nothing there)."""
    batch = tf.shape(params)[0]
    evaluations = tf.zeros([batch], tf.int32)
    if config.warmup_iterations:
        # A short run with the authors' Adam step rule first: its large
        # early steps pick the basin the authors' run ends in, which
        # L-BFGS alone (from the initial filter) often misses.
        warm = replace(config, optimizer="adam", max_iterations=config.warmup_iterations,
                       tolerance=0.0, snapshot_every=0, end_learning_rate=0.0)
        params = _first_order(loss_fn, params, height, width, warm, compact)["params"]
        evaluations += config.warmup_iterations
    main, refining = (smoothed_loss_fns[:config.smoothing_stages],
                      smoothed_loss_fns[config.smoothing_stages:])
    recording = None
    if config.snapshot_every:
        phases = len(main) + 1 + (len(refining) + 1 if config.refine_stages else 0)
        last = config.warmup_iterations + phases * config.max_iterations - 1
        recording = snapshots.frames(batch, last // config.snapshot_every + 1, height, width)

    def phase(fn, params, evaluations, recording, warm, active=None, settings=config):
        return lbfgs.minimize(fn, params, height, width, settings, compact, recording,
                              snapshot_loss_fn=None if fn is loss_fn else loss_fn,
                              warm=warm, offset=evaluations, active=active)
    for stage, smoothed_loss_fn in enumerate(main):
        params, spent, _, recording = phase(smoothed_loss_fn, params, evaluations, recording,
                                            stage > 0)
        evaluations += spent
    params, spent, losses, recording = phase(loss_fn, params, evaluations, recording, bool(main))
    evaluations += spent
    if config.refine_stages:
        kept = tf.scatter_nd(best_starts(losses, config.restarts)[:, None],
                             tf.ones([batch // config.restarts], tf.bool), [batch])
        tight = replace(config, relative_tolerance=config.refine_tolerance)
        for smoothed_loss_fn in refining:
            params, spent, _, recording = phase(smoothed_loss_fn, params, evaluations,
                                                recording, True, kept, tight)
            evaluations += spent
        params, spent, refined, recording = phase(loss_fn, params, evaluations, recording,
                                                  True, kept, tight)
        evaluations, losses = evaluations + spent, tf.where(kept, refined, losses)
    frames = (None, None) if recording is None else snapshots.stack_frames(recording)
    return Solution(filters.heatmap(config.filter, params, height, width), evaluations,
                    losses, *frames)


def _losses_and_gradients(loss_fn, params, active, height, width, filter_name, compact):
    """(B,) losses and (B, ...) gradients; with `compact`, only the `active`
    problems are evaluated (zeros elsewhere), so stopped problems cost
    nothing."""
    rows = tf.cast(tf.where(active)[:, 0], tf.int32) if compact else None
    part = params if rows is None else tf.gather(params, rows)
    with tf.GradientTape() as tape:
        tape.watch(part)
        losses = loss_fn(filters.constrain(filter_name, part, height, width), rows)
        total = tf.reduce_sum(losses)
    grad = tape.gradient(total, part)
    if rows is None:
        return losses, grad
    index = rows[:, None]
    return (tf.scatter_nd(index, losses, tf.shape(active)),
            tf.scatter_nd(index, grad, tf.shape(params)))


def _first_order(loss_fn, params, height, width, config, compact):
    """The Adam/SGD loop; returns its final state (params, iterations,
    losses, snapshot TensorArrays)."""
    batch = tf.shape(params)[0]
    zeros = tf.zeros_like(params)
    state = dict(
        step=tf.constant(0), params=params, slots=(zeros, zeros),
        active=tf.ones([batch], tf.bool), previous=tf.fill([batch], 3.4e38),
        iterations=tf.zeros([batch], tf.int32), losses=tf.zeros([batch]),
        snapshots=snapshots.empty())

    def body(s):
        losses, grad = _losses_and_gradients(loss_fn, s["params"], s["active"], height,
                                             width, config.filter, compact)
        recorded = snapshots.record(
            s["snapshots"], s["step"], config,
            lambda: filters.heatmap(config.filter, s["params"], height, width),
            lambda: tf.where(s["active"], losses, s["losses"]))
        params, slots = _update(config, s["step"], s["params"], grad,
                                s["slots"], s["active"])
        check = s["step"] % config.check_every == 0
        converged = check & (tf.abs(losses - s["previous"]) < config.tolerance)
        return dict(
            step=s["step"] + 1, params=params, slots=slots,
            active=s["active"] & ~converged,
            previous=tf.where(check, losses, s["previous"]),
            iterations=tf.where(s["active"], s["step"] + 1, s["iterations"]),
            losses=tf.where(s["active"], losses, s["losses"]),
            snapshots=recorded)

    def cond(s):
        return (s["step"] < config.max_iterations) & tf.reduce_any(s["active"])

    return tf.while_loop(cond, lambda s: (body(s),), (state,))[0]
