"""Which failures a binary reports as one `NAME: error: ...` line.

User mistakes (`TfcafError`, the OS refusing a file the user named) and a
training run that diverged (`FloatingPointError`, whose message says which
flag to change) end in one line; anything else is a bug and keeps its traceback, as does
everything when `TFCAF_DEBUG=1`. Imports no TensorFlow, so that a bad flag
fails fast.
"""

import errno
import os
import sys

from tfcaf.errors import TfcafError

# Exit statuses: 1 a user mistake, 2 a bad command line (as absl and
# argparse), 130 interrupted by Ctrl-C (128 + SIGINT, as shells report it).
USER_MISTAKE, BAD_COMMAND_LINE, INTERRUPTED = 1, 2, 130

# The OS errors that are about the user's environment, not about our code.
_ENVIRONMENT_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def debugging():
    """Whether `TFCAF_DEBUG` asks for full tracebacks."""
    return os.environ.get("TFCAF_DEBUG", "") not in ("", "0")


def exit_status(err):
    """The exit status of a failure reported as one line, or None for a bug
    (the caller re-raises it)."""
    if isinstance(err, KeyboardInterrupt):
        return INTERRUPTED
    if isinstance(err, TfcafError):
        # The training library turns Ctrl-C into a TfcafError saying how
        # to resume; it still ends the way an interrupted program does.
        cause = err.__cause__ or err.__context__
        return INTERRUPTED if isinstance(cause, KeyboardInterrupt) else USER_MISTAKE
    if isinstance(err, FloatingPointError):
        return USER_MISTAKE
    if isinstance(err, OSError) and (err.filename is not None
                                     or err.errno in _ENVIRONMENT_ERRNOS):
        return USER_MISTAKE
    return None


def one_line(err):
    """The first line of `err`'s message (its class name when empty)."""
    if isinstance(err, KeyboardInterrupt):
        return "interrupted"
    message = str(err).strip()
    return message.splitlines()[0] if message else type(err).__name__


def print_error(program, message):
    """Writes `program: error: message` to stderr."""
    sys.stderr.flush()
    print(f"{program}: error: {message}", file=sys.stderr, flush=True)
