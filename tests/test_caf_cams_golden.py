"""tfcaf's CAM family equals pytorch-grad-cam 1.5.7: the raw maps of
Grad-CAM, Grad-CAM++, XGradCAM, HiResCAM, LayerCAM, EigenCAM, Score-CAM
and Ablation-CAM on
tools/golden_net.py, for class ids, the library's top-1, and the cosine
similarity to a reference embedding (tests/data/golden/pytorch_grad_cam.npz,
written by tools/make_torch_golden.py from the library itself).

pytorch-grad-cam's `get_cam_image` map (`cam_raw`, before its ReLU and
scaling) clipped at 0 is what its `__call__` scales; tfcaf's raw maps are
clipped maps, so they are compared with ReLU(cam_raw).

Grad-CAM and Grad-CAM++ (variant="xplique") also equal xplique 2.0.2's raw
maps (tests/data/golden/xplique.npz, `<case>.raw`: ReLU of the weighted
feature maps, before its bicubic resize). xplique's GradCAM(PP) scores
Σ model(x) · targets whatever operator it is given; for the similarity
cases the targets are the unit reference embeddings and the output is unit
too, so that score is the cosine tfcaf's Similarity target explains.

tfcaf's tf-keras-vis CAMs: tests/test_caf_tf_keras_vis_golden.py.
"""

import numpy as np
import pytest

import tfcaf
from golden_files import (assert_maps_equal, case as golden_case, case_names, cosine_condition,
                          keras_net, load, tf_target)
from golden_net import FEATURE_LAYER
from tfcaf.caf import Similarity

METHODS = {"GradCAM": "gradcam", "GradCAMPlusPlus": "gradcampp", "XGradCAM": "xgradcam",
           "HiResCAM": "hirescam", "LayerCAM": "layercam", "EigenCAM": "eigencam",
           "ScoreCAM": "scorecam", "AblationCAM": "ablationcam"}


@pytest.mark.parametrize("name", case_names("pytorch_grad_cam", METHODS))
def test_raw_maps_equal_pytorch_grad_cam(name):
    case, arrays = golden_case("pytorch_grad_cam", name)
    images = arrays["images"]
    if case["targets"] == "similarity":
        target = Similarity(embeddings=arrays["references.embeddings"][case["reference_index"]])
    elif case["targets"] == "ids":
        target = np.asarray(case["target_ids"])
    else:
        target = None  # top-1 (and EigenCAM, which takes none)
    result = tfcaf.explain(keras_net(case["net"]), images, method=METHODS[case["method"]],
                           layer=FEATURE_LAYER, targets=target)
    expected = np.maximum(arrays[f"{name}.cam_raw"], 0.0)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(result.maps, expected, rtol=0, atol=2e-5 * scale)
    if case["targets"] == "top1":
        np.testing.assert_array_equal(result.targets, case["target_ids"])


def test_every_cam_method_of_the_file_is_covered():
    assert {case["method"] for case in load("pytorch_grad_cam")[0]} == set(METHODS)


# xplique case method -> tfcaf options. Float32 rounding: the largest
# difference seen is under 2 ulps of the map's peak (times the cosine's
# condition for similarity targets); 32, as tf-keras-vis' test.
XPLIQUE_CAMS = {"gradcam": {}, "gradcampp": {"variant": "xplique"}}


@pytest.mark.parametrize("name", case_names("xplique", XPLIQUE_CAMS))
def test_raw_maps_equal_xplique(name):
    case, arrays = golden_case("xplique", name)
    model, targets = tf_target(arrays, case["target"])
    result = tfcaf.explain(model, arrays["images"], method=case["method"], targets=targets,
                           layer=case["settings"]["conv_layer"], **XPLIQUE_CAMS[case["method"]])
    condition = 1.0 if case["target"] != "similarity" else cosine_condition(
        arrays["embedding.embeddings"], arrays["reference_embeddings"])
    assert_maps_equal(result.maps, arrays[f"{name}.raw"], 32, condition)
