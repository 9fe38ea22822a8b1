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


def tf_target(arrays, target):
    """(Keras network, tfcaf target) of a case of xplique.npz or
    tf_keras_vis.npz: "class" / "top1" class ids on the classifier, or
    "similarity" to the stored reference embeddings on the embedding net."""
    if target == "similarity":
        from tfcaf.caf import Similarity
        return keras_net("embedding"), Similarity(embeddings=arrays["reference_embeddings"])
    return keras_net("classifier"), arrays[f"target_ids.{target}"]


FLOAT32_EPS = float(np.finfo(np.float32).eps)


def cosine_condition(embeddings, references):
    """How much a cosine-similarity score's gradient amplifies rounding:
    max over images of |r| / |r − cos(e, r) e| for unit e and r. That
    gradient, (r − cos e) / |e|, is a difference of unit vectors whose
    norm is 1/κ: each ulp of 1 in its terms is κ ulps of the result
    (κ ≈ 54 on the golden images, whose cosines reach 0.9998)."""
    e = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    r = references / np.linalg.norm(references, axis=1, keepdims=True)
    cos = (e * r).sum(axis=1, keepdims=True)
    return float((1.0 / np.linalg.norm(r - cos * e, axis=1)).max())


def assert_maps_equal(actual, expected, ulps, condition=1.0):
    """`actual` equals `expected` up to `ulps` float32 rounding steps of
    the largest |expected| (times `condition`, the score's
    `cosine_condition` where it is a cosine, else 1)."""
    expected = np.asarray(expected, np.float64)
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, rtol=0,
                               atol=ulps * condition * FLOAT32_EPS * np.abs(expected).max())
