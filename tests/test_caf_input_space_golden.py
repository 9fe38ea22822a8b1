"""tfcaf's input-space methods equal xplique 2.0.2: Saliency, Integrated
Gradients and Occlusion (two patch settings) on tools/golden_net.py, for
class ids, the top-1 class and the cosine similarity to a reference
embedding (tests/data/golden/xplique.npz, written by
tools/make_xplique_golden.sh from the library itself)."""

import functools
import json
import math
import pathlib
import sys

import numpy as np
import pytest

import tfcaf
from tfcaf.caf import Similarity

TOOLS = pathlib.Path(__file__).resolve().parent.parent / "tools"
sys.path.insert(0, str(TOOLS))
import golden_net  # noqa: E402

GOLDEN = pathlib.Path(__file__).parent / "data" / "golden" / "xplique.npz"
# xplique case prefix -> (tfcaf method, the settings that are tfcaf options)
METHODS = {"saliency": ("saliency", ()),
           "integrated_gradients": ("integrated_gradients", ("steps", "baseline_value")),
           "occlusion": ("occlusion", ("patch_size", "patch_stride", "occlusion_value")),
           "occlusion_p8s4": ("occlusion", ("patch_size", "patch_stride", "occlusion_value"))}


@functools.lru_cache(maxsize=None)
def _golden():
    with np.load(GOLDEN) as golden:
        return json.loads(str(golden["meta"])), {k: golden[k] for k in golden.files}


@functools.lru_cache(maxsize=None)
def _model(kind):
    return golden_net.keras_model(golden_net.make_weights(), kind)


def _cases():
    return [case["name"] for case in _golden()[0] if case["method"] in METHODS]


@pytest.mark.parametrize("name", _cases())
def test_maps_equal_xplique(name):
    meta, arrays = _golden()
    case = next(c for c in meta if c["name"] == name)
    method, option_names = METHODS[case["method"]]
    options = {k: case["settings"][k] for k in option_names}
    if case["target"] == "similarity":
        model, targets = _model("embedding"), Similarity(embeddings=arrays["reference_embeddings"])
    else:
        model, targets = _model("classifier"), arrays[f"target_ids.{case['target']}"]
    result = tfcaf.explain(model, arrays["images"], method=method, targets=targets, **options)
    expected = arrays[f"{name}.explanation"][..., 0]
    slack = 0.0
    if method == "occlusion":
        # Sums of score differences: 1 ulp of the score (of 1 for a cosine)
        # per overlapping patch.
        overlap = math.ceil(options["patch_size"] / options["patch_stride"]) ** 2
        scale = 1.0 if case["target"] == "similarity" else np.abs(arrays["classifier.logits"]).max()
        slack = 4 * overlap * np.finfo(np.float32).eps * scale
    np.testing.assert_allclose(result.maps, expected, rtol=1e-4,
                               atol=slack + 1e-6 * np.abs(expected).max())
