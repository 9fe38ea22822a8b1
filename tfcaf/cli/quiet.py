"""Quiet binaries: TensorFlow's start-up noise only with `--verbosity`.

By default a binary shows its own progress lines and its result, not the
C++ log lines TensorFlow writes while loading (CUDA probing, `cuInit ...
(303)` on machines without a GPU), nor Python-level warnings about
retracing or renamed SavedModel inputs. `-v`/`--verbosity=N` (N >= 0) or
`TFCAF_DEBUG=1` shows all of it.
"""

import contextlib
import logging
import os
import sys
import tempfile
import warnings


def wants_verbose(argv):
    """Whether the command line (before absl parses it) asks for the logs:
    `-v`, `-v=N`/`-v N`, `--verbosity=N`/`--verbosity N` with N >= 0, or
    `TFCAF_DEBUG=1`."""
    if os.environ.get("TFCAF_DEBUG", "") not in ("", "0"):
        return True
    level = None
    for i, arg in enumerate(argv[1:], start=1):
        name, has_value, value = arg.partition("=")
        if name in ("-v", "--verbosity", "--v"):
            if not has_value:
                following = argv[i + 1] if i + 1 < len(argv) else ""
                value = following if following.lstrip("-").isdigit() else "1"
            level = value
    try:
        return level is not None and int(level) >= 0
    except ValueError:
        return False  # absl reports the bad value when it parses the flag


def bare_verbose_flag(argv):
    """`argv` with a bare `-v` (absl wants a value) read as `--verbosity=1`."""
    out = []
    for i, arg in enumerate(argv):
        following = argv[i + 1] if i + 1 < len(argv) else ""
        if i and arg == "-v" and not following.lstrip("-").isdigit():
            out.append("--verbosity=1")
        else:
            out.append(arg)
    return out


def set_native_log_level(verbose):
    """TensorFlow reads `TF_CPP_MIN_LOG_LEVEL` once, when it loads: call
    before the first `import tensorflow`. Quiet keeps only fatal lines."""
    if not verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"


@contextlib.contextmanager
def native_stderr_captured(verbose):
    """Sends file descriptor 2 to a temporary file inside the block.

    Some C++ lines are written while TensorFlow loads, before its log
    level applies, straight to the process's stderr; this is the only way
    to hold them back. If the block fails they are replayed, so an import
    error still shows everything.
    """
    if verbose:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            os.write(2, captured.read())
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def import_tensorflow(verbose):
    """Imports TensorFlow (quietly unless `verbose`) and mutes its Python
    warnings (retracing, renamed SavedModel inputs) unless `verbose`."""
    with native_stderr_captured(verbose):
        import tensorflow as tf
    if not verbose:
        from absl import logging as absl_logging
        # TensorFlow logs SavedModel writing and renamed inputs through
        # absl, which shows INFO once flags are parsed.
        absl_logging.set_verbosity(absl_logging.ERROR)
        tf.get_logger().setLevel(logging.ERROR)
        tf.autograph.set_verbosity(0)
        for module in ("tensorflow", "keras", "absl"):
            warnings.filterwarnings("ignore", module=module)


def show_progress():
    """The `tfcaf` loggers' INFO lines (progress, resumed runs) go to stderr
    as plain lines, whatever absl does with the root logger."""
    logger = logging.getLogger("tfcaf")
    logger.setLevel(logging.INFO)
    if not any(getattr(h, "tfcaf_progress", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.tfcaf_progress = True
        logger.addHandler(handler)
    logger.propagate = False
