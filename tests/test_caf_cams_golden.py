"""tfcaf's CAM family equals pytorch-grad-cam 1.5.7: the raw maps of
Grad-CAM, Grad-CAM++, XGradCAM, HiResCAM, LayerCAM, EigenCAM, Score-CAM
and Ablation-CAM on
tools/golden_net.py, for class ids, the library's top-1, and the cosine
similarity to a reference embedding (tests/data/golden/pytorch_grad_cam.npz,
written by tools/make_torch_golden.py from the library itself).

pytorch-grad-cam's `get_cam_image` map (`cam_raw`, before its ReLU and
scaling) clipped at 0 is what its `__call__` scales; tfcaf's raw maps are
clipped maps, so they are compared with ReLU(cam_raw).
"""

import functools
import json
import pathlib
import sys

import numpy as np
import pytest

import tfcaf
from tfcaf.caf import Similarity

TOOLS = pathlib.Path(__file__).resolve().parent.parent / "tools"
sys.path.insert(0, str(TOOLS))
import golden_net  # noqa: E402

GOLDEN = pathlib.Path(__file__).parent / "data" / "golden" / "pytorch_grad_cam.npz"
METHODS = {"GradCAM": "gradcam", "GradCAMPlusPlus": "gradcampp", "XGradCAM": "xgradcam",
           "HiResCAM": "hirescam", "LayerCAM": "layercam", "EigenCAM": "eigencam",
           "ScoreCAM": "scorecam", "AblationCAM": "ablationcam"}


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
def test_raw_maps_equal_pytorch_grad_cam(name):
    meta, arrays = _golden()
    case = next(c for c in meta if c["name"] == name)
    images = arrays["images"]
    if case["targets"] == "similarity":
        target = Similarity(embeddings=arrays["references.embeddings"][case["reference_index"]])
    elif case["targets"] == "ids":
        target = np.asarray(case["target_ids"])
    else:
        target = None  # top-1 (and EigenCAM, which takes none)
    result = tfcaf.explain(_model(case["net"]), images, method=METHODS[case["method"]],
                           layer=golden_net.FEATURE_LAYER, targets=target)
    expected = np.maximum(arrays[f"{name}.cam_raw"], 0.0)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(result.maps, expected, rtol=0, atol=2e-5 * scale)
    if case["targets"] == "top1":
        np.testing.assert_array_equal(result.targets, case["target_ids"])


def test_every_cam_method_of_the_file_is_covered():
    assert {case["method"] for case in _golden()[0]} == set(METHODS)
