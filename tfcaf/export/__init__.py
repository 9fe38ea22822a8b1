"""SavedModel export for TF Serving (see `savedmodel.export_savedmodel`)."""

from tfcaf.export.savedmodel import export_savedmodel, next_version

__all__ = ["export_savedmodel", "next_version"]
