"""Training classification, WSOL and retrieval networks (`bin/train`).

Each public name is imported on first use (PEP 562 module `__getattr__`):
bin/train's flags are defined from `tfcaf.training.config`, which loads no
TensorFlow, so a bad flag or `--help` answers before TensorFlow is imported.
"""

import importlib

# Public name -> the submodule that defines it.
_SOURCES = {
    "TrainConfig": "config", "validate": "config",
    "Trainer": "loop", "TrainingInterrupted": "loop", "train": "loop",
    "ModelDirInUse": "model_dir", "RunLock": "model_dir",
}

__all__ = ["ModelDirInUse", "RunLock", "TrainConfig", "Trainer", "TrainingInterrupted",
           "train", "validate"]


def __getattr__(name):
    if name not in _SOURCES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_SOURCES[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *__all__})
