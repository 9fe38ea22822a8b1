"""Starts a binary: `bin/X`, the `tfcaf-X` console scripts and
`python -m tfcaf.cli.X` all come here.

Order matters: the command line is parsed before TensorFlow is imported
(a flag error takes a fraction of a second), TensorFlow is imported
quietly, and the module's `main` runs with user mistakes reported as one
line (see `tfcaf.cli.errors`). Only the standard library is imported at
module level, so `bin/X` can switch into `.venv` first.
"""

import functools
import importlib
import importlib.util
import os
import sys

from tfcaf.cli import errors, quiet

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# Import names of setup.cfg's install_requires.
_REQUIRED = ("absl", "tensorflow", "keras", "numpy", "scipy", "h5py", "sklearn", "cv2", "PIL",
             "tensorboard")


def run_from_checkout(name):
    """`bin/X`: moves into the checkout's `.venv` when started with another
    interpreter (so `bin/X` works from a fresh shell after `make test`),
    then runs the binary. Without `.venv`, an interpreter that lacks the
    dependencies ends in one line saying to run `make install` (status 2)."""
    venv = os.path.join(_REPO, ".venv")
    python = os.path.join(venv, "bin", "python")
    in_venv = os.path.realpath(sys.prefix) == os.path.realpath(venv)
    if os.path.exists(python) and not in_venv and not os.environ.get("TFCAF_NO_VENV_SWITCH"):
        os.execv(python, [python] + sys.argv)
    missing = [module for module in _REQUIRED if importlib.util.find_spec(module) is None]
    if missing:
        errors.print_error(name, f"{', '.join(missing)} not installed for {sys.executable}; "
                                 f"run `make install` in {_REPO} first (it creates .venv, "
                                 f"which bin/{name} then uses)")
        sys.exit(errors.BAD_COMMAND_LINE)
    run(name)


def _cli_module(name):
    """`tfcaf.cli.<name>`; under `python -m tfcaf.cli.<name>` that is the
    `__main__` module, which must not be imported a second time (its flags
    would be defined twice)."""
    qualified = f"tfcaf.cli.{name}"
    main_module = sys.modules.get("__main__")
    spec = getattr(main_module, "__spec__", None)
    if spec is not None and spec.name == qualified:
        sys.modules.setdefault(qualified, main_module)
        return main_module
    return importlib.import_module(qualified)


def _flag_groups(module):
    """The module's `FLAG_GROUPS`, or all its flags in one group."""
    groups = getattr(module, "FLAG_GROUPS", None)
    if groups:
        return groups
    from absl import flags
    by_module = flags.FLAGS.flags_by_module_dict()
    defined = by_module.get(module.__name__) or by_module.get(getattr(module, "__file__", ""), ())
    return (("Flags", tuple(f.name for f in defined)),)


def _refuse_positional(extra):
    """No binary takes positional arguments: what absl leaves over is almost
    always the rest of an unquoted shell glob (`--images a.png b.png`), and
    ignoring it would explain only the first file."""
    from tfcaf.errors import TfcafError
    if extra:
        shown = " ".join(extra[:3]) + (f" ... ({len(extra)} in all)" if len(extra) > 3 else "")
        raise TfcafError(
            f"unexpected argument(s) {shown}: flags take one value; quote a glob "
            f"(--images='photos/*.jpg') or separate files with commas (--images=a.png,b.png)")


def _parse_flags(program, module, argv):
    """absl's parse, positional arguments refused, then the module's
    `check_flags()` (checks across flags, still before TensorFlow is
    imported); a bad flag or a `TfcafError` of the check is reported as one
    line (status 2)."""
    from absl import flags
    from tfcaf.errors import TfcafError
    try:
        remaining = flags.FLAGS(argv)
        _refuse_positional(remaining[1:])
        getattr(module, "check_flags", lambda: None)()
        return remaining
    except flags.CantOpenFlagFileError as err:  # absl's text: "ERROR:: Unable to open ..."
        errors.print_error(program, f"--flagfile: cannot open it: {err.__context__ or err}")
        sys.exit(errors.BAD_COMMAND_LINE)
    except (flags.Error, TfcafError) as err:
        errors.print_error(program, errors.one_line(err))
        sys.exit(errors.BAD_COMMAND_LINE)


def _main(module, program, verbose, argv):
    from absl import app
    quiet.show_progress()
    try:
        quiet.import_tensorflow(verbose)
        return module.main(argv)
    except app.UsageError as err:
        if errors.debugging():
            raise
        errors.print_error(program, errors.one_line(err))
        sys.exit(errors.BAD_COMMAND_LINE)
    except BaseException as err:  # noqa: B036 -- Ctrl-C is reported too
        status = errors.exit_status(err)
        if status is None or errors.debugging():
            raise
        errors.print_error(program, errors.one_line(err))
        sys.exit(status)


def run(name, argv=None):
    """Runs `tfcaf.cli.<name>.main` under absl.

    `--help` prints the module's grouped flags (`FLAG_GROUPS`) and exits 0.
    """
    argv = quiet.bare_verbose_flag(list(sys.argv if argv is None else argv))
    # Errors name the command as typed: "tfcaf-visualize", or "visualize"
    # for bin/visualize and python -m.
    typed = os.path.basename(argv[0])
    program = typed if typed.startswith("tfcaf-") else name
    verbose = quiet.wants_verbose(argv)
    quiet.set_native_log_level(verbose)
    with quiet.native_stderr_captured(verbose):
        module = _cli_module(name)
    from absl import app, flags
    from tfcaf.cli import usage
    if "--helpfull" in argv:  # absl would print it and exit with status 1
        print(flags.FLAGS.get_help())
        sys.exit(0)
    if usage.wants_help(argv):
        print(usage.help_text(program, module.__doc__ or "", _flag_groups(module)))
        sys.exit(0)
    app.run(functools.partial(_main, module, program, verbose), argv=argv,
            flags_parser=functools.partial(_parse_flags, program, module))


def train():
    """Console script `tfcaf-train`."""
    run("train")


def evaluate():
    """Console script `tfcaf-evaluate`."""
    run("evaluate")


def export():
    """Console script `tfcaf-export`."""
    run("export")


def visualize():
    """Console script `tfcaf-visualize`."""
    run("visualize")


def demo():
    """Console script `tfcaf-demo`."""
    run("demo")
