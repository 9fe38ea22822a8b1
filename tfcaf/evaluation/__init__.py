"""Localization, retrieval, faithfulness and sanity-check evaluation (`bin/evaluate`)."""

from tfcaf.evaluation.adapters import METHODS, KerasAdapter, SavedModelAdapter, load_adapter
from tfcaf.evaluation.config import BOX_PROTOCOLS, METRICS, EvalConfig
from tfcaf.evaluation.evaluate import evaluate

__all__ = ["BOX_PROTOCOLS", "METHODS", "METRICS", "EvalConfig", "KerasAdapter",
           "SavedModelAdapter", "evaluate", "load_adapter"]
