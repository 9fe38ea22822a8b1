"""The versions a result depends on, for the records runs write
(metrics.json, report.md, an export's settings)."""

import platform


def tfcaf_version():
    """The running tfcaf's `__version__` (an editable install's package
    metadata keeps the version of the day it was installed)."""
    import tfcaf
    return tfcaf.__version__


def versions():
    """{"tfcaf", "tensorflow", "keras", "python"} version strings."""
    import keras
    import tensorflow as tf
    return {"tfcaf": tfcaf_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "python": platform.python_version()}
