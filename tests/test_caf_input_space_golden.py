"""tfcaf's input-space methods equal xplique 2.0.2: Saliency, Integrated
Gradients and Occlusion (two patch settings) on tools/golden_net.py, for
class ids, the top-1 class and the cosine similarity to a reference
embedding (tests/data/golden/xplique.npz, written by
tools/make_xplique_golden.sh from the library itself); SmoothGrad with the
noise xplique drew; RISE equal to eclique/RISE's `RISE` with the masks it
drew (tests/data/golden/rise.npz, tools/make_torch_golden.sh), and to
xplique's `Rise` (variant="xplique") with the masks xplique drew and
cropped."""

import math

import numpy as np
import pytest

import tfcaf
from golden_files import assert_maps_equal, case as golden_case, case_names, keras_net, load, \
    tf_target
from tfcaf.caf import Similarity
from tfcaf.caf.option_rules import ArrayShape, AtLeast, Choice

# xplique case prefix -> (tfcaf method, the settings that are tfcaf options)
METHODS = {"saliency": ("saliency", ()),
           "integrated_gradients": ("integrated_gradients", ("steps", "baseline_value")),
           "occlusion": ("occlusion", ("patch_size", "patch_stride", "occlusion_value")),
           "occlusion_p8s4": ("occlusion", ("patch_size", "patch_stride", "occlusion_value")),
           "smoothgrad": ("smoothgrad", ("nb_samples", "noise"))}


@pytest.mark.parametrize("name", case_names("xplique", METHODS))
def test_maps_equal_xplique(name):
    case, arrays = golden_case("xplique", name)
    method, option_names = METHODS[case["method"]]
    options = {k: case["settings"][k] for k in option_names}
    if method == "smoothgrad":
        # The noise xplique drew (float16-exact), replayed.
        options["noise_draws"] = arrays["smoothgrad.noise"].astype(np.float32)
    if case["target"] == "similarity":
        model = keras_net("embedding")
        targets = Similarity(embeddings=arrays["reference_embeddings"])
    else:
        model, targets = keras_net("classifier"), arrays[f"target_ids.{case['target']}"]
    result = tfcaf.explain(model, arrays["images"], method=method, targets=targets, **options)
    expected = arrays[f"{name}.explanation"][..., 0]
    slack = 0.0
    if method == "occlusion":
        # Sums of score differences: 1 ulp of the score (of 1 for a cosine)
        # per overlapping patch.
        overlap = math.ceil(options["patch_size"] / options["patch_stride"]) ** 2
        scale = 1.0 if case["target"] == "similarity" else \
            np.abs(arrays["classifier.logits"]).max()
        slack = 4 * overlap * np.finfo(np.float32).eps * scale
    np.testing.assert_allclose(result.maps, expected, rtol=1e-4,
                               atol=slack + 1e-6 * np.abs(expected).max())


def test_rise_equals_eclique_rise_with_its_masks():
    meta, golden = load("rise")
    images, masks = golden["images"], golden["masks"][:, 0]
    expected = golden["RISE.classifier.logits.saliency"]              # (B, classes, H, W)
    settings = meta[0]["settings"]
    classes = expected.shape[1]
    targets = np.tile(np.arange(classes), (len(images), 1))           # every class of each
    result = tfcaf.explain(keras_net("classifier"), images, method="rise", targets=targets,
                           masks=masks, preservation_probability=settings["p1"])
    np.testing.assert_allclose(result.maps, expected, rtol=1e-4,
                               atol=1e-6 * np.abs(expected).max())


def _xplique_rise_masks(case, arrays):
    """(B, N, H, W) the masks xplique's `Rise` applied to each image: its
    binary (N, g, g) grids (`rise.masks`) upsampled as `Rise._apply_masks`
    does (tf.image.resize, bilinear, to int(H (1 + 1/g)) a side), then
    cropped at the offset it drew for each image and chunk of
    `batch_size` masks (`<case>.crop_offsets`)."""
    import tensorflow as tf
    settings, grids = case["settings"], arrays["rise.masks"].astype(np.float32)
    height, width = arrays["images"].shape[1:3]
    size = (int(height * (1.0 + 1.0 / grids.shape[1])), int(width * (1.0 + 1.0 / grids.shape[2])))
    upsampled = tf.image.resize(grids, size).numpy()[..., 0]
    chunk = settings["batch_size"]
    return np.stack([np.concatenate([upsampled[c * chunk:(c + 1) * chunk, dy:dy + height,
                                               dx:dx + width]
                                     for c, (dy, dx) in enumerate(offsets)])
                     for offsets in arrays[f"{case['name']}.crop_offsets"]])


@pytest.mark.parametrize("name", case_names("xplique", ["rise"]))
def test_rise_equals_xplique_with_its_masks(name):
    case, arrays = golden_case("xplique", name)
    settings = case["settings"]
    masks = _xplique_rise_masks(case, arrays)
    assert masks.shape == (len(arrays["images"]), settings["nb_samples"]) + \
        arrays["images"].shape[1:3]
    model, targets = tf_target(arrays, case["target"])
    result = tfcaf.explain(model, arrays["images"], method="rise", targets=targets,
                           masks=masks, variant="xplique", mask_value=settings["mask_value"])
    # A sum of N = 200 scores times masks over a sum of masks: float32
    # rounding of ~sqrt(N) ulps of the peak each (9 ulps seen); 64 ulps.
    assert_maps_equal(result.maps, arrays[f"{name}.explanation"][..., 0], 64)


def test_every_xplique_method_is_compared():
    # gradcam, gradcampp: tests/test_caf_cams_golden.py.
    assert {c["method"] for c in load("xplique")[0]} == set(METHODS) | {
        "rise", "gradcam", "gradcampp"}


def test_default_rise_masks_keep_a_fraction_p_and_smoothgrad_is_seeded():
    from tfcaf.caf.input_space import rise_masks
    masks = rise_masks(400, 32, 32, grid_size=7, probability=0.3, seed=0).numpy()
    assert masks.shape == (400, 32, 32) and masks.min() >= 0.0 and masks.max() <= 1.0
    # Bilinear upsampling keeps the mean of the kept cells' share, p.
    assert abs(masks.mean() - 0.3) < 0.03
    images = load("xplique")[1]["images"][:2]
    first, again, other = (tfcaf.explain(keras_net("classifier"), images, method="smoothgrad",
                                         nb_samples=4, seed=seed).maps for seed in (1, 1, 2))
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


@pytest.mark.parametrize("method,options,message", [
    ("rise", {"masks": np.ones((3, 8, 8))},
     r"rise: masks must be \(N, 32, 32\) or \(P=2, N, 32, 32\) for these images; "
     r"got \(3, 8, 8\)$"),
    ("rise", {"masks": np.ones((3, 5, 32, 32))}, r"rise: masks must be .*got \(3, 5, 32, 32\)"),
    ("smoothgrad", {"noise_draws": np.ones((2, 3, 8, 8, 3))},
     r"smoothgrad: noise_draws must be \(P=2, N, 32, 32, 3\) or \(N, 32, 32, 3\)"),
    ("smoothgrad", {"nb_samples": 0}, r"option nb_samples=0 must be an integer >= 1"),
    ("smoothgrad", {"seed": -1}, r"option seed=-1 must be an integer >= 0"),
    ("smoothgrad", {"abs": 1}, r"option abs=1 must be True or False"),
    ("smoothgrad", {"reducer": "median"}, r"reducer='median' must be one of mean, max, min, sum"),
    ("integrated_gradients", {"approximation_method": "simpson"},
     r"approximation_method='simpson' must be one of trapezoid, gausslegendre"),
    ("scorecam", {"max_N": -1}, r"option max_N=-1 must be an integer >= 0"),
    ("gradcampp", {"variant": "captum"},
     r"variant='captum' must be one of pytorch-grad-cam, tf-keras-vis, xplique"),
    ("occlusion", {"occlusion_value": float("nan")}, r"occlusion_value=nan must be a finite"),
    ("saliency", {"steps": 3}, r"unknown option\(s\) steps \(valid: reducer\)"),
])
def test_bad_method_options_are_one_line(method, options, message):
    from tfcaf.errors import TfcafError
    with pytest.raises(TfcafError, match=message):
        tfcaf.explain(keras_net("classifier"), load("xplique")[1]["images"][:2], method=method,
                      **options)


@pytest.mark.parametrize("options,rules", [
    ({"masks": None}, {}),                                   # an array needs its shapes
    ({"variant": "a"}, {}),                                  # a text option its choices
    ({"variant": "a"}, {"variant": Choice(("b",))}),         # ... among them its default
    ({"steps": 3}, {"steps": ArrayShape((("N",),))}),
    ({}, {"steps": AtLeast(0)}),                             # a rule of no option
    ({"steps": 0.5}, {"steps": AtLeast(0)}),                 # a minimum of a float
])
def test_an_option_without_its_rule_is_refused_when_declared(options, rules):
    from tfcaf.caf.methods import Method
    with pytest.raises(TypeError, match="method 'm'"):
        Method("m", targets=("classes",), iterative=False, needs_dense_gap_head=False,
               compute=None, description="", options=options, option_rules=rules)
