"""`tfcaf.applications.load_model` and the one preprocessing table."""

import os
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile

import keras
import numpy as np
import pytest

from tfcaf import applications
from tfcaf.errors import TfcafError
from tfcaf.models import build_model
from tfcaf.models.preprocessing import MODES, preprocess_pixels
from tfcaf.models.weights import keras_cache_dir

PIXELS = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")


@pytest.mark.parametrize("mode, reference", [
    ("caffe", keras.applications.vgg16.preprocess_input),
    ("torch", keras.applications.densenet.preprocess_input),
    ("tf", keras.applications.mobilenet_v2.preprocess_input),
    ("unit", lambda x: x / 255.0),
    ("none", keras.applications.efficientnet.preprocess_input),
    # openai/clip-vit-base-patch32's preprocessor_config.json image_mean/std.
    ("clip", lambda x: (x / 255.0 - np.array([0.48145466, 0.4578275, 0.40821073]))
     / np.array([0.26862954, 0.26130258, 0.27577711])),
])
def test_each_preprocessing_mode_matches_keras_applications(mode, reference):
    expected = np.asarray(reference(PIXELS.copy()))
    got = np.asarray(preprocess_pixels(keras.ops.convert_to_tensor(PIXELS), mode))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
    assert set(MODES) == {"caffe", "torch", "tf", "unit", "none", "clip"}


def test_plain_import_gives_load_model_without_tensorflow():
    code = ("import sys, tfcaf; assert 'tensorflow' not in sys.modules; "
            "print(tfcaf.applications.load_model.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "load_model", out.stderr[-2000:]


def test_application_is_the_keras_model_after_its_own_preprocessing():
    model = applications.load_model("MobileNetV2", weights="none")
    reference = keras.applications.MobileNetV2(weights=None)
    reference.set_weights(model.get_weights())
    x = np.random.default_rng(1).uniform(0, 255, (2, 224, 224, 3)).astype("float32")
    expected = reference(keras.applications.mobilenet_v2.preprocess_input(x.copy()))
    np.testing.assert_allclose(model(x), expected, rtol=1e-5, atol=1e-6)
    assert model.layers[1].name == "preprocessing"


def test_saved_tfcaf_model_loads_as_a_model(tmp_path):
    model = build_model("tiny_resnet", "classifier", num_classes=3, image_size=32,
                        backbone_options={"filters": (4, 8)})
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = applications.load_model(path)
    assert isinstance(loaded, keras.Model)
    np.testing.assert_allclose(loaded(PIXELS), model(PIXELS), rtol=1e-6, atol=1e-6)


def _no_config(tmp_path):
    path = tmp_path / "broken.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model.weights.h5", b"")
    return path


def _savedmodel(tmp_path):
    (tmp_path / "export" / "1").mkdir(parents=True)
    (tmp_path / "export" / "1" / "saved_model.pb").write_bytes(b"")
    return tmp_path / "export" / "1"


@pytest.mark.parametrize("make, message", [
    (_no_config, "broken.keras' is not a .keras model: the archive has no config.json"),
    (lambda d: (d / "r.keras").write_bytes(os.urandom(200)) and d / "r.keras",
     "r.keras' is not a .keras model: not a zip archive"),
    (_savedmodel, "export/1' is a SavedModel folder.*bin/evaluate --model takes"),
    (lambda d: d / "gone.keras", "model file '.*gone.keras' does not exist"),
    (lambda d: "ResNet51", "unknown application 'ResNet51'; choose one of densenet121"),
])
def test_bad_models_are_one_line_errors(tmp_path, make, message):
    with pytest.raises(TfcafError, match=message) as error:
        applications.load_model(make(tmp_path))
    assert "\n" not in str(error.value)


@pytest.fixture
def offline(monkeypatch):
    """Every download fails as without a network (no real request is made)."""
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.mark.parametrize("build, weights_file", [
    (lambda: applications.load_model("mobilenetv2"),
     "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"),
    (lambda: build_model("vgg16_gap", num_classes=2, image_size=32, weights="imagenet"),
     "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"),
])
def test_failed_imagenet_download_says_what_to_do(offline, build, weights_file):
    cached = os.path.join(keras_cache_dir(), weights_file)
    if os.path.exists(cached):
        pytest.skip(f"{cached} is cached: no download to fail")
    with pytest.raises(TfcafError) as error:
        build()
    message = str(error.value)
    assert "\n" not in message
    for part in ("could not download the ImageNet weights", weights_file,
                 "Temporary failure in name resolution", "--weights=none", cached):
        assert part in message
