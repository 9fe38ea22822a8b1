"""The batched L2-CAF optimisation: B independent filter problems solved in
one `tf.while_loop`, each stopping on its own rule. Adam/SGD (the authors'
optimisers) live here, L-BFGS in `lbfgs`."""

from dataclasses import dataclass, replace
from typing import NamedTuple

import tensorflow as tf

from tfcaf.caf import filters, lbfgs, snapshots
from tfcaf.errors import TfcafError


OPTIMIZERS = ("auto", "adam", "sgd", "lbfgs")


@dataclass(frozen=True)
class SolverConfig:
    """Optimisation settings (docs/method.md §1).

    The default optimizer, "auto", runs the authors' Adam settings
    (`SolverConfig.authors()`) where an iteration costs next to nothing (a
    Dense(GAP) head, solved in closed form) and batched L-BFGS on every
    other head, where it needs a tenth of the head evaluations (README,
    "L2-CAF speed").

    Attributes:
        filter: "l2norm" | "softmax" | "gauss".
        optimizer: "auto" (see above), "adam" (the authors' TF code),
            "sgd" (their PyTorch code) or "lbfgs" (batched L-BFGS, `lbfgs`).
        learning_rate: Adam/SGD: initial rate, decayed linearly over
            `max_iterations`.
        end_learning_rate: Adam/SGD: rate reached at `max_iterations`; None
            means 0 for Adam and 1e-5 for SGD, as the authors ran them.
        max_iterations: cap on each problem's iterations (for L-BFGS: head
            evaluations, line-search trials included).
        check_every: Adam/SGD: the stopping rule is evaluated every this
            many iterations (at iterations 0, 50, 100, ...).
        tolerance: Adam/SGD: an image stops when its loss moved less than
            this since the previous check. 0 disables early stopping.
        relative_tolerance: L-BFGS: a problem stops when an accepted step
            lowers its loss by less than this fraction of |loss|. 0
            disables early stopping.
        history: L-BFGS: number of curvature pairs kept.
        smoothing: L-BFGS on a head with ReLUs: a first phase minimises the
            objective with every ReLU replaced by a softplus of this
            sharpness (β times the std of the ReLU's inputs, `smoothing`
            module), the second the exact objective from there. 0: one
            exact phase. `max_iterations` bounds each phase.
        warmup_iterations: L-BFGS: this many iterations of the authors'
            Adam step rule (lr `learning_rate` decayed to 0 over them) come
            first; counted in `Solution.iterations`.
        internal_batch_size: L-BFGS on a re-run or folded head: at most
            this many problems are evaluated at once (the rest wait and
            refill the batch as others stop), bounding memory; 0: all.
        fold: fold a head's linear first layers (`folding`); False re-runs
            the whole head (for measurements; the results agree to float
            precision).
        init: "normal" (seeded N(0, 1)) or "ones".
        seed: seed of the "normal" initialisation.
        snapshot_every: record the heatmap every this many iterations
            (0: no snapshots).
    """
    filter: str = "l2norm"
    optimizer: str = "auto"
    learning_rate: float = 0.5
    end_learning_rate: float | None = None
    max_iterations: int = 1000
    check_every: int = 50
    tolerance: float = 1e-6
    relative_tolerance: float = 1e-6
    history: int = 10
    smoothing: float = 25.0
    warmup_iterations: int = 0
    internal_batch_size: int = 0
    fold: bool = True
    init: str = "normal"
    seed: int = 0
    snapshot_every: int = 0

    @classmethod
    def authors(cls, framework="tf", **overrides):
        """The authors' settings: "tf" (Adam, N(0, 1) init, decay to 0) or
        "pytorch" (SGD, ones init, decay to 1e-5); both lr 0.5 decayed
        linearly over 1000 iterations, stopping when the loss moved less
        than 1e-6 over 50 iterations."""
        if framework not in ("tf", "pytorch"):
            raise TfcafError(f"unknown framework '{framework}'; use 'tf' or 'pytorch'")
        tf_code = framework == "tf"
        settings = dict(
            optimizer="adam" if tf_code else "sgd", learning_rate=0.5,
            end_learning_rate=0.0 if tf_code else 1e-5, max_iterations=1000,
            check_every=50, tolerance=1e-6, init="normal" if tf_code else "ones")
        settings.update(overrides)
        return cls(**settings)

    def validate(self):
        filters.check_filter(self.filter)
        if self.optimizer not in OPTIMIZERS:
            raise TfcafError(
                f"unknown optimizer '{self.optimizer}'; use one of {', '.join(OPTIMIZERS)}")
        if self.init not in ("normal", "ones"):
            raise TfcafError(f"unknown init '{self.init}'; use 'normal' or 'ones'")
        if self.max_iterations < 1 or self.check_every < 1 or self.history < 1:
            raise TfcafError("max_iterations, check_every and history must be >= 1")
        if self.smoothing < 0:
            raise TfcafError(f"smoothing must be >= 0, got {self.smoothing}")
        if self.internal_batch_size < 0:
            raise TfcafError(
                f"internal_batch_size must be >= 0, got {self.internal_batch_size}")

    def for_head(self, closed_form):
        """This config with "auto" resolved for a head that is (or is not)
        solved in closed form."""
        if self.optimizer != "auto":
            return self
        return replace(self, optimizer="adam" if closed_form else "lbfgs")

    @property
    def final_rate(self):
        if self.end_learning_rate is not None:
            return self.end_learning_rate
        return 1e-5 if self.optimizer == "sgd" else 0.0


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


def solve(loss_fn, params, height, width, config, compact=True, smoothed_loss_fn=None):
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
        smoothed_loss_fn: L-BFGS: `loss_fn` with the head's ReLUs smoothed
            (as `loss_fn`), minimised first; None: no smoothing phase.

    Returns:
        A `Solution`. Call inside `tf.function` for speed: the loop is a
        `tf.while_loop`.
    """
    if config.optimizer == "auto":
        raise TfcafError("resolve optimizer='auto' with SolverConfig.for_head first")
    if config.optimizer == "lbfgs":
        return _lbfgs(loss_fn, params, height, width, config, compact, smoothed_loss_fn)
    final = _first_order(loss_fn, params, height, width, config, compact)
    maps = filters.heatmap(config.filter, final["params"], height, width)
    return Solution(maps, final["iterations"], final["losses"],
                    *snapshots.stack(final["snapshots"], config))


def _lbfgs(loss_fn, params, height, width, config, compact, smoothed_loss_fn):
    """L-BFGS, after the optional Adam warm-up and smoothed phase."""
    evaluations = 0
    if config.warmup_iterations:
        # A short run with the authors' Adam step rule first: its large
        # early steps pick the basin the authors' run ends in, which
        # L-BFGS alone (from the initial filter) often misses.
        warm = replace(config, optimizer="adam", max_iterations=config.warmup_iterations,
                       tolerance=0.0, snapshot_every=0, end_learning_rate=0.0)
        params = _first_order(loss_fn, params, height, width, warm, compact)["params"]
        evaluations = config.warmup_iterations
    recording, smoothed = None, smoothed_loss_fn is not None
    if smoothed:
        params, smoothed_evaluations, _, recording = lbfgs.minimize(
            smoothed_loss_fn, params, height, width, config, compact,
            snapshot_loss_fn=loss_fn)
        evaluations += smoothed_evaluations
    params, exact_evaluations, losses, (_, recorded) = lbfgs.minimize(
        loss_fn, params, height, width, config, compact, recording, warm=smoothed)
    return Solution(filters.heatmap(config.filter, params, height, width),
                    evaluations + exact_evaluations, losses,
                    *snapshots.stack(recorded, config))


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
