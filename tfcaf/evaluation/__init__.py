"""Localization, retrieval, faithfulness and sanity-check evaluation (`bin/evaluate`).

Each public name is imported on first use (PEP 562 module `__getattr__`):
bin/evaluate's flag defaults are `tfcaf.evaluation.config`'s, which loads no
TensorFlow, so a bad flag or `--help` answers before TensorFlow is imported.
"""

from tfcaf import lazy

# Public name -> the submodule that defines it.
_SOURCES = {
    "BOX_PROTOCOLS": "config", "EvalConfig": "config",
    "METHODS": "adapters", "KerasAdapter": "adapters", "SavedModelAdapter": "adapters",
    "load_adapter": "adapters",
    "evaluate": "pipeline",
    "seed_stability": "seeds",
}

__all__ = sorted(_SOURCES)

__getattr__, __dir__ = lazy.attach(__name__, _SOURCES)
