"""The project's error class for user mistakes.

Binaries print a `TfcafError` as one line (`NAME: error: ...`); any other
exception is a bug and keeps its traceback. It subclasses `ValueError` so
that code catching bad values keeps working.
"""


class TfcafError(ValueError):
    """A user mistake: bad input, flag, file, layer or shape (the message names it)."""
