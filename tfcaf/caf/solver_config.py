"""`SolverConfig`: the settings of the L2-CAF optimisation, and the authors'
presets. Loads no TensorFlow, so the binaries can take their flag defaults
and check flags from it before TensorFlow is imported."""

import math
import numbers
from dataclasses import asdict, dataclass, fields, replace

from tfcaf.errors import TfcafError
from tfcaf.names import FILTERS, SOLVER_OPTIMIZERS, SOLVER_PRESETS

# The options each optimizer reads (beyond the shared ones); a non-default
# value of an option the resolved optimizer does not read is refused.
_FIRST_ORDER = frozenset({"learning_rate", "end_learning_rate", "check_every", "tolerance"})
_LBFGS = frozenset({"relative_tolerance", "history", "smoothing", "smoothing_stages",
                    "refine_stages", "refine_tolerance", "warmup_iterations",
                    "internal_batch_size"})
OPTIONS_OF = {"adam": _FIRST_ORDER, "sgd": _FIRST_ORDER, "lbfgs": _LBFGS}
# restarts=None: L-BFGS solves each problem from this many initial filters,
# Adam/SGD from one (README, "L2-CAF quality": chosen on the choice images).
LBFGS_RESTARTS = 4

# The authors' code, as each script runs with no arguments (docs/method.md
# §1 cites the files and commits): lr 0.5 decayed linearly over 1000
# iterations, a stop when the loss moved less than 1e-6 over 50 iterations.
#   TF: ahmdtaha/constrained_attention_filter, visualize_attention.py
#   (Adam, N(0, 1) initial filter, tf_utils.poly_lr to 0).
#   PyTorch: ahmdtaha/l2_caf_pytorch, class_oblivious.py and
#   class_specific.py (SGD, filter of ones, polynomial_lr_decay to 1e-5).
_AUTHORS = {
    "authors": dict(optimizer="adam", learning_rate=0.5, end_learning_rate=0.0,
                    max_iterations=1000, check_every=50, tolerance=1e-6, init="normal",
                    restarts=1),
    "authors_pytorch": dict(optimizer="sgd", learning_rate=0.5, end_learning_rate=1e-5,
                            max_iterations=1000, check_every=50, tolerance=1e-6, init="ones",
                            restarts=1),
}


@dataclass(frozen=True)
class SolverConfig:
    """Optimisation settings (docs/method.md §1).

    The default optimizer, "auto", is chosen per kind of head from
    measurements on trained networks (README, "L2-CAF quality and speed"):
    the authors' Adam where an iteration costs next to nothing (a
    Dense(GAP) head, solved in closed form), on heads ending in an L2
    normalisation (whose small losses stop Adam early under the authors'
    absolute tolerance) and on heads with a convolution in the loop
    (where L-BFGS missed the speed or the per-image quality bar), batched
    L-BFGS from 4 starts on other heads (fully connected after the last
    pool).

    Attributes:
        filter: "l2norm" | "softmax" | "gauss".
        optimizer: "auto" (see above), "adam" (the authors' TF code),
            "sgd" (their PyTorch code) or "lbfgs" (batched L-BFGS, `lbfgs`).
        learning_rate: Adam/SGD (and L-BFGS's Adam warm-up): initial rate,
            decayed linearly over `max_iterations`.
        end_learning_rate: Adam/SGD: rate reached at `max_iterations`; None
            means 0 for Adam and 1e-5 for SGD, as the authors ran them.
        max_iterations: cap on each problem's iterations (for L-BFGS: head
            evaluations, line-search trials included, per phase). For
            Adam/SGD it is also the learning-rate schedule's horizon: a
            lower cap decays the rate faster, it does not cut a 1000-step
            schedule short.
        check_every: Adam/SGD: the stopping rule is evaluated every this
            many iterations (at iterations 0, 50, 100, ...); at least 1
            (`tolerance=0` is what disables early stopping).
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
            exact phase.
        smoothing_stages: L-BFGS: smoothed phases before the exact one, each
            4 times sharper than the one before (`smoothing.SMOOTHING_STEP`).
        refine_stages, refine_tolerance: L-BFGS: after every start's last
            phase, each problem's kept start alone goes on through this
            many sharper smoothed phases (continuing the 4× steps) and an
            exact one, stopping at this `relative_tolerance`; 0 stages: no
            refining.
        warmup_iterations: L-BFGS: this many iterations of the authors'
            Adam step rule (lr `learning_rate` decayed to 0 over them) come
            first; counted in `Solution.iterations`.
        internal_batch_size: L-BFGS on a re-run or folded head: at most
            this many problems are evaluated at once (the rest wait and
            refill the batch as others stop), bounding memory; 0: all.
        restarts: initial filters solved per problem (seeds [seed, 0],
            [seed, 1], ...; extra rows of the same batch); the one with the
            lowest final objective is kept. None: `LBFGS_RESTARTS` for
            L-BFGS, 1 for Adam/SGD.
        fold: fold a head's linear first layers (`folding`) and solve a
            Dense(GAP) head in closed form; False re-runs the whole head
            (for measurements; the results agree to float precision).
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
    smoothing_stages: int = 3
    refine_stages: int = 3
    refine_tolerance: float = 1e-8
    warmup_iterations: int = 0
    internal_batch_size: int = 0
    restarts: int | None = None
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
        return cls.preset("authors" if framework == "tf" else "authors_pytorch", **overrides)

    @classmethod
    def preset(cls, name, **overrides):
        """The settings called `name` (one of `SOLVER_PRESETS`: "default",
        "authors", "authors_pytorch"), with `overrides` applied."""
        if name not in SOLVER_PRESETS:
            raise TfcafError(
                f"unknown solver preset '{name}'; use one of {', '.join(SOLVER_PRESETS)}")
        return cls(**{**_AUTHORS.get(name, {}), **overrides})

    def validate(self):
        """`TfcafError` naming the option for any value of the wrong type or
        out of range (`_check_numbers`); returns the config."""
        if self.filter not in FILTERS:
            raise TfcafError(f"unknown filter '{self.filter}'; choose one of {', '.join(FILTERS)}")
        if self.optimizer not in SOLVER_OPTIMIZERS:
            raise TfcafError(f"unknown optimizer '{self.optimizer}'; use one of "
                             f"{', '.join(SOLVER_OPTIMIZERS)}")
        if self.init not in ("normal", "ones"):
            raise TfcafError(f"unknown init '{self.init}'; use 'normal' or 'ones'")
        if not isinstance(self.fold, bool):
            raise TfcafError(f"fold must be True or False, got {self.fold!r}")
        _check_numbers(self)
        if (self.restarts or 1) > 1 and self.init == "ones" and self.filter != "gauss":
            raise TfcafError(f"restarts={self.restarts} with init='ones': every start would "
                             "be the same filter; use init='normal'")
        return self

    def unused_options(self):
        """Options set away from their defaults that the (resolved)
        optimizer does not read, sorted."""
        if self.optimizer == "auto":
            return []
        reads = OPTIONS_OF[self.optimizer] | (
            {"learning_rate"} if self.optimizer == "lbfgs" and self.warmup_iterations else set())
        default = SolverConfig()
        return sorted(f.name for f in fields(self)
                      if f.name in _FIRST_ORDER | _LBFGS and f.name not in reads
                      and getattr(self, f.name) != getattr(default, f.name))

    def for_head(self, adam_head):
        """This config with optimizer="auto" and restarts=None resolved for
        a head on which "auto" runs the authors' Adam (`adam_head`: one
        solved in closed form, ending in an L2 normalisation or with a
        convolution, `objective.runs_adam`) or not;
        `TfcafError` for options the resolved optimizer does not read."""
        resolved = self
        if self.optimizer == "auto":
            resolved = replace(self, optimizer="adam" if adam_head else "lbfgs")
        if resolved.restarts is None:
            restarts = LBFGS_RESTARTS if resolved.optimizer == "lbfgs" and \
                resolved.init == "normal" else 1
            resolved = replace(resolved, restarts=restarts)
        unused = resolved.unused_options()
        if unused:
            how = f"optimizer='auto' resolves to '{resolved.optimizer}' on this head" \
                if self.optimizer == "auto" else f"optimizer='{self.optimizer}'"
            raise TfcafError(f"option(s) {', '.join(unused)} not used by the solver: {how}, "
                             f"which reads {', '.join(sorted(OPTIONS_OF[resolved.optimizer]))}")
        return resolved

    @property
    def final_rate(self):
        if self.end_learning_rate is not None:
            return self.end_learning_rate
        return 1e-5 if self.optimizer == "sgd" else 0.0

    def describe(self):
        """The settings a result depends on, as a JSON-ready dict: every
        shared option, the options the optimizer reads, and for Adam/SGD
        `horizon` (the schedule's length, = max_iterations)."""
        shared = {f.name for f in fields(self)} - _FIRST_ORDER - _LBFGS - {"snapshot_every"}
        reads = OPTIONS_OF.get(self.optimizer, _FIRST_ORDER | _LBFGS)
        settings = {k: v for k, v in asdict(self).items() if k in shared | reads}
        if self.optimizer in ("adam", "sgd"):
            settings.update(end_learning_rate=self.final_rate, horizon=self.max_iterations)
        return settings


# Integer options and their least value; every one is counted or seeded in
# int32 inside the solver, so INT32_MAX is their greatest.
_COUNTS = {"max_iterations": 1, "check_every": 1, "history": 1, "restarts": 1,
           "smoothing_stages": 1, "refine_stages": 0, "warmup_iterations": 0,
           "internal_batch_size": 0, "snapshot_every": 0, "seed": 0}
INT32_MAX = 2 ** 31 - 1
# Real options that may be 0 (0 disables what they control).
_NON_NEGATIVE = ("tolerance", "relative_tolerance", "refine_tolerance", "smoothing")
# Adam moves every filter entry by about the learning rate per step,
# whatever the gradient's scale, so a rate far above the N(0, 1) initial
# filter's spread throws the start away at once. Measured on a small
# Dense head (300 iterations): rates 0.05 to 10 end at the same losses,
# 50 and 500 up to 1.5% above them; this bound is 200 times the authors' 0.5.
# SGD's step scales with the gradient, which is small on most heads, so it
# has no upper bound beyond being finite.
ADAM_MAX_LEARNING_RATE = 100.0


def _check_integer(name, value, least):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or \
            not least <= value <= INT32_MAX:
        raise TfcafError(f"{name} must be an integer in [{least}, {INT32_MAX}], "
                         f"got {value!r}")


def _check_real(name, value, positive=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise TfcafError(f"{name} must be {bound} and finite, got {value!r}")


def _check_numbers(config):
    """Integers are integers (not bools, not 2.5) in their range, reals are
    finite and not negative, the learning rates positive and, for Adam,
    at most `ADAM_MAX_LEARNING_RATE`."""
    for name, least in _COUNTS.items():
        if not (name == "restarts" and config.restarts is None):
            _check_integer(name, getattr(config, name), least)
    for name in _NON_NEGATIVE:
        _check_real(name, getattr(config, name))
    _check_real("learning_rate", config.learning_rate, positive=True)
    if config.end_learning_rate is not None:
        _check_real("end_learning_rate", config.end_learning_rate)
        if config.end_learning_rate > config.learning_rate:
            raise TfcafError(f"end_learning_rate={config.end_learning_rate!r} is above "
                             f"learning_rate={config.learning_rate!r}: the rate decays to it")
    # The L-BFGS warm-up runs Adam's step rule at learning_rate too.
    adam_steps = config.optimizer in ("adam", "auto") or (
        config.optimizer == "lbfgs" and config.warmup_iterations)
    if adam_steps and config.learning_rate > ADAM_MAX_LEARNING_RATE:
        raise TfcafError(f"learning_rate={config.learning_rate!r} is too large for Adam "
                         f"(at most {ADAM_MAX_LEARNING_RATE:g}: each step moves every filter "
                         "entry by about the rate, erasing the N(0, 1) initial filter)")
    phases = config.smoothing_stages + config.refine_stages + 2 \
        if config.optimizer in ("lbfgs", "auto") else 1
    if config.warmup_iterations + phases * config.max_iterations > INT32_MAX:
        raise TfcafError(f"max_iterations={config.max_iterations} is too large: the "
                         f"{phases} solver phase(s) count iterations in int32")
