"""The L2-CAF engine: model splitting, the batched solver, CAM and Grad-CAM."""

from tfcaf.caf.explain import METHODS, Explainer, Explanation, explain
from tfcaf.caf.solver import SolverConfig
from tfcaf.caf.split import SplitModel, split_model

__all__ = ["METHODS", "Explainer", "Explanation", "SolverConfig", "SplitModel",
           "explain", "split_model"]
