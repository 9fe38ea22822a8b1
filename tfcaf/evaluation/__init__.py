"""Localization, retrieval and sanity-check evaluation (`bin/evaluate`)."""

from tfcaf.evaluation.adapters import METHODS, KerasAdapter, SavedModelAdapter, load_adapter
from tfcaf.evaluation.evaluate import METRICS, evaluate

__all__ = ["METHODS", "METRICS", "KerasAdapter", "SavedModelAdapter", "evaluate",
           "load_adapter"]
