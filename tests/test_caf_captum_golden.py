"""tfcaf equals captum 0.9.0 (tests/data/golden/captum.npz, written by
tools/make_torch_golden.py from the library on the PyTorch port of
tools/golden_net.py) for class ids and the top-1 class: Saliency (abs),
IntegratedGradients (n_steps 50, baseline 0) with method riemann_trapezoid
and gausslegendre, NoiseTunnel(Saliency) smoothgrad with the noise captum
drew.

captum's attributions are per colour channel ((B, 3, H, W), stored also as
`attributions_nhwc`); tfcaf's maps are reduced over the colours, by
xplique's reducers: Saliency the max (as tf-keras-vis), Integrated
Gradients and SmoothGrad the mean. So each golden attribution is compared
after the same reduction.
"""

import numpy as np
import pytest

import tfcaf
from golden_files import FLOAT32_EPS, assert_maps_equal, case as golden_case, keras_net, load
from tfcaf.caf.input_space import path_rule

# Float32 rounding of gradients summed in another order (over the steps,
# samples and the network's backward pass): the largest difference seen is
# 4 ulps of the map's peak; 32 leaves a margin of 8.
ULPS = 32


def _tfcaf_call(case, arrays):
    """(tfcaf method, its options, the reduction over colours of captum's
    attributions that tfcaf's map is)."""
    settings = case["settings"]
    if case["method"] == "Saliency":
        assert settings["abs"] is True
        return "saliency", {}, np.max
    if case["method"] == "IntegratedGradients":
        assert settings["multiply_by_inputs"] is True
        return "integrated_gradients", {"steps": settings["n_steps"],
                                        "baseline_value": settings["baselines"],
                                        "approximation_method": settings["method"]}, np.mean
    assert case["method"] == "NoiseTunnel(Saliency)" and settings["nt_type"] == "smoothgrad"
    # captum's noise: (B * samples, C, H, W), row b * samples + s is sample
    # s of image b (repeat_interleave); tfcaf's: (B, samples, H, W, C).
    n = settings["nt_samples"]
    noise = arrays[f"{case['name']}.noise"]
    noise = noise.reshape(-1, n, *noise.shape[1:]).transpose(0, 1, 3, 4, 2)
    return "smoothgrad", {"noise_draws": noise, "abs": settings["abs"]}, np.mean


@pytest.mark.parametrize("name", [c["name"] for c in load("captum")[0]])
def test_maps_equal_captum_reduced_over_colours(name):
    case, arrays = golden_case("captum", name)
    method, options, reduce = _tfcaf_call(case, arrays)
    result = tfcaf.explain(keras_net("classifier"), arrays["images"], method=method,
                           targets=np.asarray(case["target_ids"]), **options)
    expected = reduce(arrays[f"{name}.attributions_nhwc"], axis=-1)
    assert_maps_equal(result.maps, expected, ULPS)


@pytest.mark.parametrize("approximation_method", ["riemann_trapezoid", "gausslegendre"])
def test_path_rule_is_captums_alphas_and_step_sizes(approximation_method):
    _, arrays = golden_case("captum", f"IntegratedGradients.{approximation_method}.ids")
    stored = {field: arrays[f"IntegratedGradients.{approximation_method}.ids.{field}"]
              for field in ("alphas", "step_sizes")}
    alphas, weights = path_rule(approximation_method, len(stored["alphas"]))
    # captum's are float32 (torch.linspace, torch.tensor(...).float()).
    np.testing.assert_allclose(alphas, stored["alphas"], rtol=0, atol=FLOAT32_EPS)
    np.testing.assert_allclose(weights, stored["step_sizes"], rtol=2 * FLOAT32_EPS)


def test_captums_riemann_trapezoid_is_49_50_of_the_trapezoid_rule():
    """captum's riemann_trapezoid weighs points 1/(n − 1) apart by 1/n (ends
    1/2n): (n − 1)/n of the trapezoid rule, tfcaf's default as xplique's."""
    captum_alphas, captum_weights = path_rule("riemann_trapezoid", 50)
    alphas, weights = path_rule("trapezoid", 50)
    np.testing.assert_array_equal(captum_alphas, alphas)
    np.testing.assert_allclose(captum_weights, weights * 49 / 50, rtol=1e-15)

