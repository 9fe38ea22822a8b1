"""The failures a binary reports as one `NAME: error: ...` line (bad input,
missing files, a diverging run, a TensorFlow op rejecting data) rather than
as a traceback."""

import sys

import tensorflow as tf

USER_ERRORS = (ValueError, OSError, ArithmeticError, tf.errors.OpError)


def exit_with(program, err):
    """Exits with status 1 after printing one line naming the error."""
    message = err.message if isinstance(err, tf.errors.OpError) else str(err)
    sys.exit(f"{program}: error: {message.strip().splitlines()[0] if message else type(err).__name__}")
