import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory):
    """One cache folder for the embedded digits set, shared by all tests."""
    return str(tmp_path_factory.mktemp("digits_cache"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A .keras 10-class classifier on 32-px raw pixels (untrained, seeded),
    with tfcaf's preprocessing layer, for the binaries' end-to-end tests."""
    import keras
    from tfcaf.models.layers import ImagePreprocessing
    path = tmp_path_factory.mktemp("tiny_model") / "tiny.keras"
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = ImagePreprocessing("unit")(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    keras.Model(inputs, keras.layers.Dense(10)(x)).save(str(path))
    return path
