"""The committed golden files of reference libraries (tests/data/golden/),
and the networks they were made on (tools/golden_net.py), for the parity
tests of tfcaf's methods."""

import functools
import json
import pathlib
import sys

import numpy as np

TOOLS = pathlib.Path(__file__).resolve().parent.parent / "tools"
sys.path.insert(0, str(TOOLS))
import golden_net  # noqa: E402

GOLDEN = pathlib.Path(__file__).parent / "data" / "golden"


@functools.lru_cache(maxsize=None)
def load(library):
    """(meta: list of case dicts, arrays: name -> array) of
    `tests/data/golden/<library>.npz`."""
    with np.load(GOLDEN / f"{library}.npz") as golden:
        return json.loads(str(golden["meta"])), {k: golden[k] for k in golden.files}


@functools.lru_cache(maxsize=None)
def keras_net(kind):
    """golden_net's "classifier" or "embedding" Keras model, built once."""
    return golden_net.keras_model(golden_net.make_weights(), kind)


def case_names(library, methods):
    """Names of the cases of `library` whose method is one of `methods`."""
    return [case["name"] for case in load(library)[0] if case["method"] in methods]


def case(library, name):
    """(the case's meta dict, all arrays of the file)."""
    meta, arrays = load(library)
    return next(c for c in meta if c["name"] == name), arrays
