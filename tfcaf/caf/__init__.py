"""The L2-CAF engine: model splitting, the batched solver, and the method
registry (L2-CAF, CAM, Grad-CAM, Grad-CAM++)."""

from tfcaf.caf.explain import Explainer, Explanation, explain
from tfcaf.caf.methods import METHODS, Method, method
from tfcaf.caf.solver import Solution, SolverConfig
from tfcaf.caf.split import SplitModel, split_model

__all__ = ["METHODS", "Explainer", "Explanation", "Method", "Solution", "SolverConfig",
           "SplitModel", "explain", "method", "split_model"]
