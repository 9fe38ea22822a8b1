"""SavedModel export for TF Serving (see `savedmodel.export_savedmodel`).

`export_savedmodel` and `next_version` are imported on first use, so that
`tfcaf.export.settings` (bin/export's flag defaults) loads no TensorFlow.
"""

from tfcaf import lazy

_SOURCES = {"export_savedmodel": "savedmodel", "next_version": "savedmodel",
            "read_settings": "settings"}

__all__ = sorted(_SOURCES)

__getattr__, __dir__ = lazy.attach(__name__, _SOURCES)
