"""`--help` of the binaries: their own flags, grouped, with defaults.

absl's `--help` lists only the key flags of the script's main module (none
of ours, which live in `tfcaf.cli.*`) and exits with status 1; each cli
module instead lists its flags in `FLAG_GROUPS`, and this prints them.
"""

import textwrap

from absl import flags

HELP_ARGS = ("-h", "--help", "-help", "--helpshort", "-?")
# absl's own flags worth knowing, shown after the binary's (absl's help
# texts of these speak of absl, not of what they do here).
_COMMON_HELP = [
    "  --verbosity=N, -v N, -v  (default: quiet)",
    "      N >= 0 (a bare -v is 1) also shows TensorFlow's log lines and warnings.",
    "  --flagfile",
    "      Read flags from this file, one --name=value a line.",
    "  --helpfull",
    "      Every flag, including absl's and TensorFlow's.",
]
_WIDTH = 100


def wants_help(argv):
    """Whether `argv` asks for `--help` (or a short form)."""
    return any(arg in HELP_ARGS or arg.startswith("--help=") for arg in argv[1:])


def _default_text(flag):
    value = flag.default
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) or "''"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if value != "" else "''"


def describe_flag(flag):
    """Lines for one flag: `--name (default: X)` then its wrapped help."""
    name = f"--{flag.name}" + (f", -{flag.short_name}" if flag.short_name else "")
    default = _default_text(flag)
    head = f"  {name}" + (f"  (default: {default})" if default is not None else "")
    help_text = " ".join(flag.help.split())
    parser = flag.parser
    if getattr(parser, "lower_bound", None) is not None or \
            getattr(parser, "upper_bound", None) is not None:
        help_text += f" ({parser.syntactic_help})"
    body = textwrap.wrap(help_text, _WIDTH, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return [head] + body


def help_text(program, summary, groups, flag_values=flags.FLAGS):
    """The help page of a binary.

    Args:
        program: name shown in `usage:` (e.g. "tfcaf-visualize").
        summary: what the binary does (its module docstring).
        groups: ((title, (flag names...)), ...) in display order.
        flag_values: where the flags are defined.
    """
    lines = [f"usage: {program} [--flag=value ...]", "", summary.strip(), ""]
    for title, names in groups:
        lines.append(f"{title}:")
        for name in names:
            lines += describe_flag(flag_values[name])
        lines.append("")
    lines += ["Common:"] + _COMMON_HELP + [
        "", "Errors in what you give end in one 'NAME: error: ...' line (exit status 1, 2 for",
        "a bad flag); TFCAF_DEBUG=1 shows their tracebacks."]
    return "\n".join(lines)


def ungrouped_flags(module_names, groups, flag_values=flags.FLAGS):
    """Flags defined by `module_names` that `groups` leaves out (a test
    keeps this empty, so that no flag is missing from `--help`)."""
    shown = {name for _, names in groups for name in names}
    by_module = flag_values.flags_by_module_dict()
    defined = {f.name for m in module_names for f in by_module.get(m, ())}
    return sorted(defined - shown)
