"""`--method_options`: the own options of methods without a solver
(`Method.options`: Score-CAM's `batch_size`, RISE's `nb_samples`, ...),
for bin/visualize and bin/evaluate, checked against the registry before
TensorFlow loads (`tfcaf.caf.methods` imports none).
"""

from absl import flags

from tfcaf.caf.methods import METHODS, method_options
from tfcaf.errors import TfcafError

FLAGS = flags.FLAGS
FLAG = "method_options"


def define(flag_values=FLAGS):
    """Defines --method_options; returns its name, for `FLAG_GROUPS`."""
    settable = ", ".join(f"{m.name}.{o}" for m in METHODS.values() for o, d in m.options.items()
                         if d is not None)
    flags.DEFINE_list(FLAG, [], "METHOD.OPTION=VALUE, comma separated: options of methods "
                      f"without a solver, named as in their reference library ({settable}).",
                      flag_values=flag_values)
    return (FLAG,)


def typed_value(text, default, item, flag=FLAG):
    """`text` of `--flag=item` as the type of the option's `default` (text
    options are checked against their choices by their registry)."""
    if default is None or isinstance(default, (tuple, list)):
        raise TfcafError(f"--{flag}={item}: an array option; pass it from Python")
    if isinstance(default, str):
        return text
    if isinstance(default, bool):
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        raise TfcafError(f"--{flag}={item}: {text!r} is not true or false")
    kind = int if isinstance(default, int) else float
    try:
        return kind(text)
    except ValueError:
        wanted = "an integer" if kind is int else "a number"
        raise TfcafError(f"--{flag}={item}: {text!r} is not {wanted}") from None


def method_options_flag(flag_values=FLAGS):
    """{method: {option: value}} of --method_options, each checked by
    `methods.method_options`; `TfcafError` naming the item at fault."""
    parsed = {}
    for item in flag_values[FLAG].value or ():
        name, _, value = item.partition("=")
        method_name, _, option = name.partition(".")
        if not value or not option or method_name not in METHODS:
            raise TfcafError(f"--{FLAG}={item}: give METHOD.OPTION=VALUE with METHOD one of "
                             f"{', '.join(METHODS)}")
        method = METHODS[method_name]
        if method.iterative:
            raise TfcafError(f"--{FLAG}={item}: {method_name} is solved by L2-CAF's solver; "
                             "use the solver flags")
        if option not in method.options:
            valid = ", ".join(method.options) or "none"
            raise TfcafError(f"--{FLAG}={item}: {method_name} has no option '{option}' "
                             f"(its options: {valid})")
        options = parsed.setdefault(method_name, {})
        options[option] = typed_value(value, method.options[option], item)
        try:
            method_options(method, options)
        except TfcafError as err:
            raise TfcafError(f"--{FLAG}={item}: {err}") from None
    return parsed
