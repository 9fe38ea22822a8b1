"""The L2-CAF solver flags of every binary that explains (visualize,
evaluate, export, the demo), and the one `SolverConfig` they describe.

`--solver` names a preset of `SolverConfig.preset` ("authors": the authors'
TF settings); `--optimizer`, `--restarts`, `--iterations` and the seed flag
override it only when given, so every default is the preset's own value,
read from `SolverConfig` (never copied here). Loads no TensorFlow
(`tfcaf.caf.solver_config` and `tfcaf.names` do not), so a bad combination
is refused while flags are parsed (`check`, run by `tfcaf.cli.launch`).
"""

from absl import flags

from tfcaf.caf.solver_config import SolverConfig
from tfcaf.errors import TfcafError
from tfcaf.names import OUTPUTS, SOLVER_OPTIMIZERS, SOLVER_PRESETS

FLAGS = flags.FLAGS
# What `define` chose, per `FlagValues`: the seed flag's name, whether
# --iterations has the binary's own default (then it always applies), and
# whether --output exists.
_DEFINED = {}
_INITS = {"normal": "seeded N(0, 1)", "ones": "all-ones"}


def _preset_values(field):
    """"auto (default), adam (authors), ...": `field` of each preset."""
    return ", ".join(f"{getattr(SolverConfig.preset(name), field)} ({name})"
                     for name in SOLVER_PRESETS)


def define(iterations=None, iterations_help="", seed="seed", output=True,
           flag_values=FLAGS):
    """Defines --solver, --optimizer, --restarts, --iterations, the seed flag
    and (with `output`) --output; returns their names in `--help` order.

    Args:
        iterations: --iterations' own default (bin/export's fixed-latency
            cap); None: the preset's, used only when the flag is given.
        iterations_help: sentence added to --iterations' help.
        seed: name of the initial-filter seed flag (bin/evaluate's --seed
            already seeds K-means and the randomisation).
        output: define --output (what the model's output is).
        flag_values: where to define them (tests use a fresh `FlagValues`).
    """
    on = dict(flag_values=flag_values)
    default = SolverConfig.preset(SOLVER_PRESETS[0])
    tf_code, pytorch = SolverConfig.preset("authors"), SolverConfig.preset("authors_pytorch")
    flags.DEFINE_enum(
        "solver", SOLVER_PRESETS[0], SOLVER_PRESETS,
        "L2-CAF solver settings: default (tfcaf's), authors (the authors' TF code: "
        f"{tf_code.optimizer}, lr {tf_code.learning_rate:g} decayed linearly over "
        f"{tf_code.max_iterations} iterations, {_INITS[tf_code.init]} initial filter, stop "
        f"when the loss moved < {tf_code.tolerance:g} over {tf_code.check_every} iterations) "
        f"or authors_pytorch (their PyTorch code: {pytorch.optimizer}, "
        f"{_INITS[pytorch.init]} initial filter). The flags below override it.", **on)
    flags.DEFINE_enum("optimizer", None, SOLVER_OPTIMIZERS,
                      "L2-CAF optimizer (default: the --solver preset's: "
                      f"{_preset_values('optimizer')}); auto is Adam on Dense(GAP) heads, "
                      "batched L-BFGS on others.", **on)
    flags.DEFINE_integer("restarts", default.restarts,
                         "Initial filters solved per image (seeds [seed, 0], [seed, 1], ...); "
                         "the one with the lowest final loss is kept. Default: the --solver "
                         "preset's.", lower_bound=1, **on)
    flags.DEFINE_integer("iterations", iterations if iterations is not None
                         else default.max_iterations,
                         "L2-CAF iteration cap (L-BFGS: head evaluations) and, for Adam/SGD, "
                         "the learning-rate schedule's horizon: the rate decays linearly to "
                         "its end value over this many iterations, so a lower cap decays it "
                         "faster. Images stop earlier by the solver's rule. " + (
                             iterations_help or "Default: the --solver preset's."),
                         lower_bound=1, **on)
    flags.DEFINE_integer(seed, default.seed, "Seed of the L2-CAF initial filters. Default: "
                         "the --solver preset's.", lower_bound=0, **on)
    names = ["solver", "optimizer", "restarts", "iterations", seed]
    if output:
        flags.DEFINE_enum("output", None, OUTPUTS, "What the model's output is: class "
                          "logits or a retrieval embedding (default: guessed: embedding after "
                          "a final L2 normalisation or a layer named like one, else logits).",
                          **on)
        names.append("output")
    _DEFINED[id(flag_values)] = dict(seed=seed, own_iterations=iterations is not None,
                                     output=output)
    return tuple(names)


def given(flag_values=FLAGS):
    """The solver flags set on the command line, as `--name=value` words."""
    defined = _DEFINED[id(flag_values)]
    names = ["solver", "optimizer", "restarts", "iterations", defined["seed"]] + (
        ["output"] if defined["output"] else [])
    return [f"--{name}={flag_values[name].value}" for name in names
            if not flag_values[name].using_default_value]


def solver_config(flag_values=FLAGS):
    """The validated `SolverConfig` the flags describe: the --solver preset
    with the flags given on the command line (and --iterations where the
    binary has its own default) applied.

    Raises:
        TfcafError: one line naming the flags, for a bad value or an option
            the chosen optimizer does not read (e.g. --solver=authors
            --optimizer=lbfgs: the authors' end learning rate is Adam's).
    """
    defined = _DEFINED[id(flag_values)]
    overrides = {field: flag_values[name].value for name, field in (
        ("optimizer", "optimizer"), ("restarts", "restarts"), ("iterations", "max_iterations"),
        (defined["seed"], "seed"))
        if not flag_values[name].using_default_value
        or (name == "iterations" and defined["own_iterations"])}
    try:
        config = SolverConfig.preset(flag_values["solver"].value, **overrides)
        config.validate()
        if config.optimizer != "auto":
            # An explicit optimizer reads the same options on every head.
            config.for_head(adam_head=True)
    except TfcafError as err:
        raise TfcafError(f"{' '.join(given(flag_values)) or '--solver'}: {err}") from None
    return config


def check(flag_values=FLAGS):
    """`solver_config`, for `tfcaf.cli.launch` to run once flags are parsed."""
    solver_config(flag_values)
