"""What a resumable run's results depend on, and the one-line refusal of
an unfinished run made with other settings (`bin/evaluate`'s shards,
`bin/visualize`'s files)."""

import hashlib
import json
import os

import numpy as np

from tfcaf.errors import TfcafError


def weights_fingerprint(model):
    """sha256 of a Keras model's weights: a retrained model at the same
    path is another model."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


def files_fingerprint(folder):
    """sha256 of the files under `folder` (a SavedModel export)."""
    digest = hashlib.sha256()
    for root, _, files in sorted(os.walk(folder)):
        for name in sorted(files):
            with open(os.path.join(root, name), "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


def as_json(identity):
    """`identity` as JSON would read it back (tuples as lists, ...)."""
    return json.loads(json.dumps(identity, default=str))


def digest(identity):
    """sha256 (hex) of `identity`'s JSON: a name for the run."""
    return hashlib.sha256(json.dumps(as_json(identity), sort_keys=True).encode()).hexdigest()


def differences(recorded, current, prefix=""):
    """[(dotted key, recorded value, current value)] where two JSON-like
    dicts differ."""
    differing = []
    for key in sorted(set(recorded) | set(current)):
        old, new = recorded.get(key), current.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            differing += differences(old, new, f"{prefix}{key}.")
        elif old != new:
            differing.append((f"{prefix}{key}", old, new))
    return differing


def check_same_run(recorded, current, out_dir):
    """Raises `TfcafError` naming the first difference between the
    identity of an unfinished run into `out_dir` and this one's."""
    differing = differences(recorded, current)
    if differing:
        key, old, new = differing[0]
        raise TfcafError(f"--out_dir={out_dir} holds an unfinished run with another {key} (was "
                         f"{old!r}, now {new!r}); run that command again to finish it, or pass "
                         "--overwrite to start afresh")
