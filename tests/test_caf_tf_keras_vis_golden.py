"""tfcaf equals tf-keras-vis 0.8.7 (tests/data/golden/tf_keras_vis.npz,
written by tools/make_tf_keras_vis_golden.py from the library itself) on
tools/golden_net.py, for class ids, the top-1 class and the cosine
similarity to a reference embedding:

- Grad-CAM and LayerCAM with tfcaf's defaults; Grad-CAM++ with
  variant="tf-keras-vis" (its e^score factor and renormalised α); Score-CAM
  with variant="tf-keras-vis" (scores of softmax(output) as the weights),
  all channels and max_N=4 (Faster Score-CAM). Compared at feature-map
  size: the library's `raw` (expand_cam=False, normalize_cam=False).
- Saliency with tfcaf's defaults (max over colours of |∂y/∂x|), and
  SmoothGrad with abs=True, reducer="max" on the noise the library drew
  (`smoothgrad.noise`, (samples, B, H, W, C): moved to tfcaf's (B,
  samples, H, W, C)). Compared with the library's `unnormalized` maps.
"""

import numpy as np
import pytest

import tfcaf
from golden_files import (assert_maps_equal, case as golden_case, cosine_condition, load,
                          tf_target)
from golden_net import FEATURE_LAYER

# golden case method -> (tfcaf method, tfcaf options of the case's settings)
METHODS = {
    "gradcam": ("gradcam", lambda settings, arrays: {}),
    "layercam": ("layercam", lambda settings, arrays: {}),
    "gradcampp": ("gradcampp", lambda settings, arrays: {"variant": "tf-keras-vis"}),
    "scorecam": ("scorecam", lambda settings, arrays: {
        "variant": "tf-keras-vis", "max_N": settings["max_N"] or 0}),
    "scorecam_n4": ("scorecam", lambda settings, arrays: {
        "variant": "tf-keras-vis", "max_N": settings["max_N"]}),
    "saliency": ("saliency", lambda settings, arrays: {}),
    "smoothgrad": ("smoothgrad", lambda settings, arrays: {
        "noise_draws": np.moveaxis(arrays["smoothgrad.noise"], 0, 1), "abs": True,
        "reducer": "max"}),
}
# Float32 rounding: each value is a sum over the head's backward pass (or
# over channels, samples) in another order than the library's; the largest
# difference seen is 4 ulps of the map's peak (times the cosine's
# condition for similarity targets), so 32 leaves a margin of 8.
ULPS = 32


def _condition(arrays, target):
    if target != "similarity":
        return 1.0
    return cosine_condition(arrays["embedding.embeddings"], arrays["reference_embeddings"])


@pytest.mark.parametrize("name", [c["name"] for c in load("tf_keras_vis")[0]])
def test_maps_equal_tf_keras_vis(name):
    case, arrays = golden_case("tf_keras_vis", name)
    assert case["settings"].get("seek_penultimate_conv_layer", False) is False
    method, options = METHODS[case["method"]]
    model, targets = tf_target(arrays, case["target"])
    result = tfcaf.explain(model, arrays["images"], method=method, targets=targets,
                           layer=FEATURE_LAYER, **options(case["settings"], arrays))
    field = "raw" if f"{name}.raw" in arrays else "unnormalized"
    assert result.maps.shape == arrays[f"{name}.{field}"].shape
    assert_maps_equal(result.maps, arrays[f"{name}.{field}"], ULPS,
                      _condition(arrays, case["target"]))


@pytest.mark.parametrize("network", ["classifier", "embedding"])
def test_max_n_channels_are_each_images_top_spread(network):
    """tf-keras-vis keeps the union over its batch of each image's max_N
    channels of largest spatial std; tfcaf keeps each problem's own. They
    are the same maps when every image's top max_N is the same set, as on
    the golden images (else tf-keras-vis' map of an image would depend on
    the other images of its batch)."""
    meta, arrays = load("tf_keras_vis")
    features = arrays[f"{network}.features"]
    for case in meta:
        if case["method"] == "scorecam_n4" and case["network"] == network:
            top = np.argsort(-features.std(axis=(1, 2)), axis=1, kind="stable")
            kept = top[:, :case["settings"]["max_N"]]
            union = arrays[f"{case['name']}.channels"]
            assert all(set(row) == set(union) for row in kept), (kept, union)


def test_every_case_is_compared():
    assert {c["method"] for c in load("tf_keras_vis")[0]} == set(METHODS)


@pytest.mark.parametrize("name", ["gradcampp.class", "scorecam.class", "smoothgrad.class"])
def test_tfcaf_defaults_differ_where_the_options_are_set(name):
    """The options matter: tfcaf's defaults (pytorch-grad-cam's Grad-CAM++
    and Score-CAM, xplique's SmoothGrad) are other maps than tf-keras-vis'."""
    case, arrays = golden_case("tf_keras_vis", name)
    method, options = METHODS[case["method"]]
    options = {k: v for k, v in options(case["settings"], arrays).items() if k == "noise_draws"}
    model, targets = tf_target(arrays, case["target"])
    default = tfcaf.explain(model, arrays["images"], method=method, targets=targets,
                            layer=FEATURE_LAYER, **options).maps
    expected = arrays[f"{name}.raw" if f"{name}.raw" in arrays else f"{name}.unnormalized"]
    assert np.abs(default - expected).max() > 0.01 * np.abs(expected).max()
