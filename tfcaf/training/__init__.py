"""Training classification, WSOL and retrieval networks (`bin/train`).

Each public name is imported on first use (PEP 562 module `__getattr__`):
bin/train's flags are defined from `tfcaf.training.config`, which loads no
TensorFlow, so a bad flag or `--help` answers before TensorFlow is imported.
"""

from tfcaf import lazy

# Public name -> the submodule that defines it.
_SOURCES = {
    "TrainConfig": "config", "validate": "config",
    "Trainer": "loop", "TrainingInterrupted": "loop", "train": "loop",
    "ModelDirInUse": "model_dir", "RunLock": "model_dir",
}

__all__ = sorted(_SOURCES)

__getattr__, __dir__ = lazy.attach(__name__, _SOURCES)
