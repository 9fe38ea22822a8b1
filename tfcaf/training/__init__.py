"""Training classification, WSOL and retrieval networks (`bin/train`)."""

from tfcaf.training.config import TrainConfig, validate
from tfcaf.training.loop import Trainer, train

__all__ = ["TrainConfig", "Trainer", "train", "validate"]
