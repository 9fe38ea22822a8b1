"""Training classification, WSOL and retrieval networks (`bin/train`)."""

from tfcaf.training.config import TrainConfig, validate
from tfcaf.training.loop import Trainer, TrainingInterrupted, train
from tfcaf.training.model_dir import ModelDirInUse, RunLock

__all__ = ["ModelDirInUse", "RunLock", "TrainConfig", "Trainer", "TrainingInterrupted",
           "train", "validate"]
