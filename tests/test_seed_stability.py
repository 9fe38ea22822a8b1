"""L2-CAF's seed stability: the per-image Pearson against numpy, and two
runs from the same seed."""

import keras
import numpy as np
import pytest

from tfcaf.caf import SolverConfig
from tfcaf.evaluation import seed_stability
from tfcaf.evaluation.seeds import pearson_per_image


def test_pearson_per_image_equals_numpy_corrcoef():
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 5, 4, 3))
    expected = [np.corrcoef(x.ravel(), y.ravel())[0, 1] for x, y in zip(a, b)]
    np.testing.assert_allclose(pearson_per_image(a, b), expected, rtol=1e-12)
    flat = np.zeros((1, 4, 3))
    np.testing.assert_array_equal(pearson_per_image(flat, flat), [1.0])
    np.testing.assert_array_equal(pearson_per_image(flat, a[:1]), [0.0])


def _relu_head_model():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="features")(inputs)
    x = keras.layers.Dense(8, activation="relu")(keras.layers.Flatten()(x))
    return keras.Model(inputs, keras.layers.Dense(3)(x))


@pytest.mark.slow
def test_the_same_seed_twice_gives_the_same_maps_and_the_resolved_solver():
    model = _relu_head_model()
    images = np.random.default_rng(1).normal(size=(3, 6, 6, 3)).astype("float32")
    pearson, solver = seed_stability(model, images, SolverConfig(max_iterations=30),
                                     seeds=(2, 2), batch_size=2)
    np.testing.assert_allclose(pearson, 1.0, atol=1e-6)
    assert solver["optimizer"] == "lbfgs" and solver["restarts"] > 1 and solver["seed"] == 2
