"""The versions a result depends on, for the records runs write
(metrics.json, report.md, an export's settings)."""

import importlib.metadata
import platform


def tfcaf_version():
    """tfcaf's installed version (package metadata), else the package's
    `__version__` (a checkout on `sys.path` without an install)."""
    try:
        return importlib.metadata.version("tfcaf")
    except importlib.metadata.PackageNotFoundError:
        import tfcaf
        return getattr(tfcaf, "__version__", "unknown")


def versions():
    """{"tfcaf", "tensorflow", "keras", "python"} version strings."""
    import keras
    import tensorflow as tf
    return {"tfcaf": tfcaf_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "python": platform.python_version()}
