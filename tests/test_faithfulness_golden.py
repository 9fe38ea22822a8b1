"""Deletion and insertion equal eclique/RISE's `CausalMetric` (evaluation.py
@ d91ea00) on tools/golden_net.py: the same curves, point for point, and
AUCs, from the golden file tools/make_torch_golden.sh wrote with the
reference itself (tests/data/golden/rise.npz: its top-1 RISE saliency of 4
images, step 32 of 32 × 32 pixels, deletion to zeros, insertion from its
Gaussian blur). The reference scores the model's output as given; its
notebooks wrap the network in a softmax, which is tfcaf's score for
classifiers, so the "softmax" cases are the ones to equal."""

import numpy as np
import pytest

from golden_files import keras_net, load
from tfcaf.metrics import faithfulness as fm

META, GOLDEN = load("rise")


def _case(mode):
    name = f"CausalMetric.{mode}.softmax"
    return next(c for c in META if c["name"] == name), name


@pytest.mark.parametrize("mode", ["del", "ins"])
def test_curves_and_aucs_equal_causal_metric(mode):
    case, name = _case(mode)
    model = keras_net("classifier")
    result = fm.deletion_insertion(
        lambda batch: model(batch), GOLDEN["images"], GOLDEN[f"{name}.explanation"],
        np.array(case["target_ids"], np.int32), substrate=(0.0, 0.0, 0.0),
        step=case["settings"]["step"])
    key = "deletion" if mode == "del" else "insertion"
    # Softmax probabilities: float32 rounding of values <= 1.
    np.testing.assert_allclose(result[f"{key}_curve"], GOLDEN[f"{name}.scores"], rtol=0,
                               atol=4 * np.finfo(np.float32).eps)
    np.testing.assert_allclose(result[key], GOLDEN[f"{name}.auc"], rtol=0,
                               atol=4 * np.finfo(np.float32).eps)


def test_blur_is_the_references_kernel_and_substrate():
    kernel = GOLDEN["causal.kernel"]                          # (3, 3, 11, 11), per channel
    np.testing.assert_allclose(fm.blur_kernel(), kernel[0, 0], rtol=0, atol=1e-9)
    assert not kernel[0, 1].any()
    # Not a sampled Gaussian: reflecting at the 11 × 11 grid's border keeps
    # the mass that a truncated Gaussian would lose.
    axis = np.arange(11) - 5
    sampled = np.outer(np.exp(-axis ** 2 / 50), np.exp(-axis ** 2 / 50))
    assert np.abs(fm.blur_kernel() - sampled / sampled.sum()).max() > 1e-4
    blurred = fm.blurred(GOLDEN["images"], np.zeros(3, np.float32))
    np.testing.assert_allclose(blurred, GOLDEN["causal.blurred_nchw"].transpose(0, 2, 3, 1),
                               rtol=0, atol=1e-6)
