"""Batched L-BFGS for B independent L2-CAF filter problems.

Each problem has its own curvature history, step length and stopping point;
one loop step evaluates the head (forward and backward) once for every
running problem, which is either taking a quasi-Newton step or backtracking
in its line search (Armijo rule, quadratic interpolation). With `compact`,
only the running problems are gathered into the evaluated batch, so stopped
problems cost nothing and the cost follows the mean, not the maximum,
evaluation count.
"""

import math

import tensorflow as tf

from tfcaf.caf import filters, snapshots

_ARMIJO = 1e-4
# The first step (no curvature yet) moves f by this fraction of ‖f‖; the
# loss only depends on f's direction, so its scale sets the step scale.
_FIRST_STEP = 0.1
# A line search that would move f by less than this fraction of ‖f‖ has hit
# the float32 noise floor: the problem stops there.
_MIN_STEP = 1e-6
# A restart along -g moves f by this fraction of the first step.
_RESTART_STEP = 0.01


def _dot(a, b):
    return tf.reduce_sum(a * b, axis=-1)


def _direction(grad, s_hist, y_hist, count):
    """The L-BFGS direction -H·grad, (R, n), by the two-loop recursion.

    Args:
        grad: (R, n) gradients.
        s_hist, y_hist: (R, m, n) steps and gradient changes, newest last;
            only the newest `count` (R,) entries of each row are valid.
        count: (R,) int32.
    """
    m = s_hist.shape[1]
    q, coefficients = grad, []
    for j in reversed(range(m)):
        s, y = s_hist[:, j], y_hist[:, j]
        valid = count > m - 1 - j
        rho = tf.where(valid, 1.0 / tf.where(valid, _dot(s, y), 1.0), 0.0)
        a = rho * _dot(s, q)
        q -= a[:, None] * y
        coefficients.append((rho, a))
    s, y = s_hist[:, -1], y_hist[:, -1]
    gamma = tf.where(count > 0, _dot(s, y) / tf.maximum(_dot(y, y), 1e-30), 1.0)
    r = gamma[:, None] * q
    for j, (rho, a) in zip(range(m), reversed(coefficients)):
        b = rho * _dot(y_hist[:, j], r)
        r += (a - b)[:, None] * s_hist[:, j]
    return -r


def _push(history, count, s, y, push, size):
    """History with (s, y) appended (oldest dropped) in rows `push`."""
    s_hist, y_hist = history
    pushed = (tf.concat([s_hist[:, 1:], s[:, None]], 1),
              tf.concat([y_hist[:, 1:], y[:, None]], 1))
    history = tuple(tf.where(push[:, None, None], new, old)
                    for new, old in zip(pushed, history))
    return history, tf.where(push, tf.minimum(count + 1, size), count)


def _backtrack(f, fx, slope, alpha, finite):
    """Next trial step after a rejected one: minimiser of the quadratic
    through f(x), f'(x; d) and f(x + αd), kept within [0.1α, 0.5α]."""
    curvature = f - fx - slope * alpha
    interpolated = tf.where(curvature > 0, -slope * alpha ** 2 / (2.0 * curvature), 0.0)
    return tf.clip_by_value(tf.where(finite, interpolated, 0.0), 0.1 * alpha, 0.5 * alpha)


def _step(state, f, g, trial, config, warm):
    """The new per-row state after evaluating (f (R,), g (R, n)) at the
    rows' trial points: accept or backtrack, update history, pick the next
    direction and step, and decide which rows stop. `warm` (Python bool):
    the starting points are a nearby minimum (see `minimize`)."""
    x, fx, gx, d, alpha = (state[k] for k in ("x", "fx", "gx", "d", "alpha"))
    started = state["started"]
    finite = tf.math.is_finite(f) & tf.reduce_all(tf.math.is_finite(g), -1)
    slope = _dot(gx, d)
    accept = started & finite & (f <= fx + _ARMIJO * alpha * slope)
    moved = accept | ~started
    s, y = trial - x, g - gx
    history, count = _push(state["history"], state["count"], s, y,
                           accept & (_dot(s, y) > 1e-7 * _dot(y, y)), config.history)
    x_new, g_new = tf.where(moved[:, None], trial, x), tf.where(moved[:, None], g, gx)
    direction = _direction(g_new, *history, count)
    descent = _dot(g_new, direction) < 0
    direction = tf.where(descent[:, None], direction, -g_new)
    count = tf.where(moved & ~descent, 0, count)
    x_norm, g_norm = tf.norm(x_new, axis=-1), tf.norm(g_new, axis=-1)
    first_alpha = _FIRST_STEP * x_norm / tf.maximum(g_norm, 1e-30)
    # A warm start (from a nearby minimum) takes a restart-sized first step.
    first_step = first_alpha if not warm else tf.where(
        started, first_alpha, _RESTART_STEP * first_alpha)
    backtrack = _backtrack(f, fx, slope, alpha, finite)
    # Kinks of a ReLU head make gradient changes y large and the quasi-
    # Newton steps tiny, so a small decrease (or a failed line search)
    # along a history direction restarts along -g; a problem stops only
    # when a steepest-descent step makes no progress either.
    small = accept & (fx - f <= config.relative_tolerance * tf.abs(fx))
    stuck = started & ~accept & (backtrack * tf.norm(d, axis=-1) <= _MIN_STEP * x_norm)
    restart = (small | stuck) & ~state["steepest"]
    count = tf.where(restart, 0, count)
    evaluations = state["evaluations"] + 1
    done = ((small | stuck) & state["steepest"]) | (moved & (g_norm == 0)) | \
        (~started & ~finite) | (evaluations >= config.max_iterations)
    direction = tf.where(restart[:, None], -g_new, tf.where(moved[:, None], direction, d))
    alpha = tf.where(restart, _RESTART_STEP * first_alpha, tf.where(
        moved, tf.where(count > 0, 1.0, first_step), backtrack))
    steepest = restart | tf.where(moved, count == 0, state["steepest"])
    return dict(
        x=x_new, fx=tf.where(moved, f, fx), gx=g_new, d=direction, alpha=alpha,
        started=tf.ones_like(started), steepest=steepest, history=history,
        count=count, evaluations=evaluations, done=done)


def _running(done, internal_batch_size):
    """(B,) bool: the problems evaluated in this loop step."""
    running = ~done
    if internal_batch_size:
        running &= tf.cumsum(tf.cast(running, tf.int32)) <= internal_batch_size
    return running


def _initial_state(x0, history):
    """The loop state of (B, n) starting points x0: nothing evaluated yet."""
    batch, size = tf.shape(x0)[0], x0.shape[1]
    zeros, empty = tf.zeros_like(x0), tf.zeros([batch, history, size])
    return dict(
        x=x0, fx=tf.zeros([batch]), gx=zeros, d=zeros, alpha=tf.zeros([batch]),
        started=tf.zeros([batch], tf.bool), steepest=tf.ones([batch], tf.bool),
        history=(empty, empty),
        count=tf.zeros([batch], tf.int32), evaluations=tf.zeros([batch], tf.int32),
        done=tf.zeros([batch], tf.bool))


def _merged(state, new, running, rows):
    """`state` with the `running` problems' entries replaced by `new`'s
    (`new` holds every problem, or only `rows` when compact)."""
    if rows is None:
        keep = lambda n, o: tf.where(  # noqa: E731
            tf.reshape(running, [-1] + [1] * (len(o.shape) - 1)), n, o)
        return tf.nest.map_structure(keep, new, state)
    put = lambda n, o: tf.tensor_scatter_nd_update(o, rows[:, None], n)  # noqa: E731
    return tf.nest.map_structure(put, new, state)


def _recorder(config, offset, snapshot_loss_fn, constrain, shape, height, width):
    """`record(frames, new, rows, running)`: writes the snapshot frames
    that fall due in this loop step.

    A problem's frame k is its accepted point after its own
    k·snapshot_every + 1 evaluations, counted over all phases (`offset`).
    """
    def record(frames, new, rows, running):
        counts = tf.gather(offset, rows) + new["evaluations"]
        due = tf.cast(tf.where(running & ((counts - 1) % config.snapshot_every == 0))[:, 0],
                      tf.int32)
        due_rows, x = tf.gather(rows, due), tf.gather(new["x"], due)
        losses = tf.gather(new["fx"], due) if snapshot_loss_fn is None else \
            snapshot_loss_fn(constrain(x), due_rows)
        maps = filters.heatmap(config.filter, tf.reshape(x, (-1,) + shape), height, width)
        return snapshots.write(frames, due_rows, (tf.gather(counts, due) - 1) //
                               config.snapshot_every, maps, losses)
    return record


def minimize(loss_fn, params, height, width, config, compact, recording=None,
             snapshot_loss_fn=None, warm=False, offset=None, active=None):
    """Minimises B independent filter problems with L-BFGS.

    Args:
        loss_fn: `(c, rows) -> (R,) losses` as in `solver.solve`.
        params: (B, h, w) or (B, 2) initial parameters.
        height, width: h, w (Python ints).
        config: `SolverConfig` (history, relative_tolerance,
            max_iterations, internal_batch_size, snapshot_every, filter).
        compact: evaluate only the running problems (dynamic shapes).
        recording: `snapshots.Frames` to write into (with
            `config.snapshot_every`), or None.
        snapshot_loss_fn: the loss the snapshots report, when `loss_fn` is
            a stand-in for it (`(c, rows)` as `loss_fn`; evaluated only for
            problems at a snapshot); None: `loss_fn`'s own values.
        warm: `params` is a nearby minimum (of a smoothed phase): the
            first step is as short as a restart's.
        offset: (B,) int32 evaluations each problem made before this phase
            (earlier phases), so that its frame k is the point after its
            own k·snapshot_every + 1 evaluations; None: zeros.
        active: (B,) bool, the problems to minimise (the others keep their
            parameters, cost nothing, and return 0 evaluations and a loss
            of 0); None: all.

    Returns:
        (params (B, ...) final parameters, evaluations (B,) int32 head
        evaluations of this phase, losses (B,) final losses, recording).
    """
    shape = tuple(params.shape[1:])
    state = _initial_state(tf.reshape(params, (-1, math.prod(shape))), config.history)
    if active is not None:
        state["done"] = ~active
    offset = tf.zeros_like(state["evaluations"]) if offset is None else offset
    constrain = lambda x: filters.constrain(  # noqa: E731
        config.filter, tf.reshape(x, (-1,) + shape), height, width)

    def evaluate(x, rows):
        with tf.GradientTape() as tape:
            tape.watch(x)
            losses = loss_fn(constrain(x), rows)
            total = tf.reduce_sum(losses)
        return losses, tape.gradient(total, x)

    if recording is not None:
        record = _recorder(config, offset, snapshot_loss_fn, constrain, shape, height, width)

    def body(state, frames):
        running = _running(state["done"], config.internal_batch_size)
        rows = tf.cast(tf.where(running)[:, 0], tf.int32) if compact else None
        take = (lambda t: t) if rows is None else (lambda t: tf.gather(t, rows))
        part = tf.nest.map_structure(take, state)
        trial = part["x"] + tf.where(part["started"], part["alpha"], 0.0)[:, None] * part["d"]
        f, g = evaluate(trial, rows)
        new = _step(part, f, g, trial, config, warm)
        if frames is not None:
            every_row = tf.range(tf.shape(running)[0])
            frames = record(frames, new, every_row if rows is None else rows,
                            running if rows is None else tf.ones_like(rows, tf.bool))
        return _merged(state, new, running, rows), frames

    if recording is None:
        final = tf.while_loop(lambda state: tf.reduce_any(~state["done"]),
                              lambda state: (body(state, None)[0],), (state,))[0]
    else:
        final, recording = tf.while_loop(
            lambda state, frames: tf.reduce_any(~state["done"]), body, (state, recording))
    return (tf.reshape(final["x"], (-1,) + shape), final["evaluations"], final["fx"],
            recording)
