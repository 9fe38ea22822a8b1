"""SavedModel export: plain-TensorFlow loading, saved_model_cli, versions (a killed
export: tests/test_bad_inputs_outputs.py)."""

import logging
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import logging as absl_logging

import tfcaf
from tfcaf.caf import METHODS, Explainer, SolverConfig
from tfcaf.export import export_savedmodel, next_version, read_settings
from tfcaf.export.signatures import explain_signatures
from tfcaf.outputs import OutputError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 24
ITERATIONS = 40

RUN_ALL_SIGNATURES = r"""
import importlib.util, sys
# The editable install puts tfcaf on every path of this venv: take it away.
sys.meta_path = [f for f in sys.meta_path if "tfcaf" not in repr(f).lower()
                 and "editable" not in repr(f).lower()]
sys.path = [p for p in sys.path if "__editable__" not in p and p.rstrip("/") != sys.argv[4]]
import numpy as np
import tensorflow as tf
assert importlib.util.find_spec("tfcaf") is None, "tfcaf must not be importable here"
path, inputs_file, out_file = sys.argv[1:4]
inputs = np.load(inputs_file, allow_pickle=True)
loaded = tf.saved_model.load(path)
results = {}
for name, fn in loaded.signatures.items():
    args = {k: tf.constant(inputs[k]) for k in fn.structured_input_signature[1]}
    for key, value in fn(**args).items():
        results[f"{name}/{key}"] = value.numpy()
np.savez(out_file, **results)
"""


def _trained_model(embedding):
    """A tiny CNN fitted for a few steps on random data (raw pixel input)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4, name="embedding" if embedding else "logits")(x)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "mse")
    rng = np.random.default_rng(0)
    model.fit(rng.uniform(0, 255, (16, SIZE, SIZE, 3)), rng.normal(size=(16, 4)),
              epochs=2, verbose=0)
    return model


def _sample_inputs():
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (2, SIZE, SIZE, 3)).astype(np.uint8)
    return {"images": pixels.astype(np.float32),
            "image_bytes": np.array([tf.io.encode_png(p).numpy() for p in pixels], dtype=object),
            "targets": np.array([-1, 2], np.int32),
            "references": rng.normal(size=(2, 4)).astype(np.float32)}, pixels


def _reference(model, images, signature, inputs):
    """What tfcaf.explain gives for the method and target of `signature`
    (a name of `signatures.explain_signatures`) on `inputs`."""
    explainer = Explainer(model)
    method, kind = explain_signatures(explainer)[signature]
    options = {"max_iterations": ITERATIONS} if METHODS[method].iterative else {}
    if kind == "similarity":
        options["targets"] = tfcaf.Similarity(embeddings=inputs["references"])
    elif explainer.takes_targets(method):
        top1 = model(images).numpy().argmax(-1)
        options["targets"] = np.where(inputs["targets"] == -1, top1, inputs["targets"])
    return tfcaf.explain(model, images, method=method, **options)


@pytest.mark.parametrize("embedding", [pytest.param(False, marks=pytest.mark.slow), True])
def test_plain_tensorflow_process_reproduces_keras_and_every_method(tmp_path, embedding,
                                                                     caplog):
    model = _trained_model(embedding)
    caplog.set_level(logging.INFO, logger="absl")
    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.INFO)
    try:
        path = export_savedmodel(model, str(tmp_path), "net", iterations=ITERATIONS)
    finally:
        absl_logging.set_verbosity(verbosity)
    # Signature inputs get valid names, so TensorFlow has nothing to rename.
    assert "Writing fingerprint" in caplog.text
    assert "unsupported characters" not in caplog.text
    assert path == str(tmp_path / "net" / "1")
    inputs, pixels = _sample_inputs()
    np.savez(tmp_path / "inputs.npz", **inputs)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-I", "-c", RUN_ALL_SIGNATURES, path,
                           str(tmp_path / "inputs.npz"), str(tmp_path / "out.npz"), REPO],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = np.load(tmp_path / "out.npz", allow_pickle=True)  # status: strings
    images = inputs["images"]
    expected = model(images).numpy()
    if embedding:
        np.testing.assert_allclose(out["serving_default/embedding"], expected, atol=1e-4)
        np.testing.assert_allclose(out["predict_image_bytes/embedding"], expected, atol=1e-4)
    else:
        probabilities = tf.nn.softmax(expected).numpy()
        np.testing.assert_allclose(out["serving_default/probabilities"], probabilities,
                                   atol=1e-4)
        np.testing.assert_allclose(out["predict_image_bytes/probabilities"], probabilities,
                                   atol=1e-4)
        np.testing.assert_array_equal(out["serving_default/classes"][:, 0], expected.argmax(-1))
    signatures = explain_signatures(Explainer(model))
    # Every method has a signature: all apply to a Dense(GAP) head.
    assert {method for method, _ in signatures.values()} == \
        set(METHODS) - ({"cam"} if embedding else set())
    for signature in signatures:
        reference = _reference(model, images, signature, inputs)
        for key in ("maps", "heatmaps"):
            served, wanted = out[f"{signature}/{key}"], getattr(reference, key)
            np.testing.assert_allclose(served, wanted, rtol=1e-4,
                                       atol=1e-4 * max(1.0, np.abs(wanted).max()),
                                       err_msg=f"{signature}/{key}")
        assert (out[f"{signature}/status"] == b"ok").all(), signature
        if reference.targets is not None:
            np.testing.assert_array_equal(out[f"{signature}/targets"], reference.targets)


@pytest.mark.slow
def test_saved_model_cli_show_and_run(tmp_path):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    path = export_savedmodel(_trained_model(False), str(tmp_path), "net", iterations=5)
    show = subprocess.run([cli, "show", "--all", "--dir", path], capture_output=True,
                          text=True, timeout=300)
    assert show.returncode == 0, show.stderr
    for name in ("serving_default", "predict_image_bytes", "explain", "explain_oblivious",
                 "inputs['images']", "inputs['image_bytes']", "inputs['targets']",
                 "outputs['probabilities']", "outputs['classes']", "outputs['heatmaps']",
                 "outputs['maps']"):
        assert name in show.stdout, name
    np.save(tmp_path / "x.npy", _sample_inputs()[0]["images"])
    run = subprocess.run([cli, "run", "--dir", path, "--tag_set", "serve",
                          "--signature_def", "serving_default",
                          "--inputs", f"images={tmp_path / 'x.npy'}",
                          "--outdir", str(tmp_path / "cli_out")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    probabilities = np.load(tmp_path / "cli_out" / "probabilities.npy")
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)


def test_versions_and_existing_version(tmp_path):
    model = _trained_model(False)
    assert next_version(str(tmp_path / "net")) == 1
    os.makedirs(tmp_path / "net" / "7")
    os.makedirs(tmp_path / "net" / "notes")
    assert next_version(str(tmp_path / "net")) == 8
    with pytest.raises(OutputError, match=f"export version '{tmp_path / 'net' / '7'}' "
                       "already exists and is never replaced; the next free version is 8"):
        export_savedmodel(model, str(tmp_path), "net", version=7, iterations=5)


@pytest.mark.slow
def test_check_command_runs_every_signature(tmp_path):
    path = export_savedmodel(_trained_model(True), str(tmp_path), "net", iterations=5)
    env = dict(os.environ, TFCAF_NO_VENV_SWITCH="1")
    proc = subprocess.run([sys.executable, os.path.join(REPO, "bin", "export"), f"--check={path}"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = [l for l in proc.stdout.splitlines() if l.endswith(" ok")]
    names = ["serving_default", "predict_image_bytes"] + \
        list(explain_signatures(Explainer(_trained_model(True))))
    assert sorted(l.split(":")[0] for l in lines) == sorted(names)
    assert "NON-FINITE" not in proc.stdout


def test_export_records_its_solver_settings_and_explains_with_them(tmp_path):
    model = _trained_model(True)
    solver = SolverConfig.preset("authors", restarts=2, seed=5)
    path = export_savedmodel(model, str(tmp_path), "net", solver=solver, iterations=ITERATIONS)
    assert os.path.isfile(os.path.join(path, "assets.extra", "tfcaf_solver.json"))
    settings = read_settings(path)
    resolved = Explainer(model).resolve(
        SolverConfig.preset("authors", restarts=2, seed=5, max_iterations=ITERATIONS))
    assert settings["solver"] == resolved.describe()
    assert settings["solver"]["horizon"] == ITERATIONS and settings["solver"]["restarts"] == 2
    assert settings["layer"] == Explainer(model).layer and settings["output"] == "embedding"
    assert settings["signatures"]["explain"] == {"method": "l2caf", "target": None}
    assert settings["signatures"]["explain_rise_similarity"] == {"method": "rise",
                                                                 "target": "similarity"}
    assert settings["method_options"]["rise"]["nb_samples"] == METHODS["rise"].options[
        "nb_samples"]
    assert settings["versions"]["tensorflow"] == tf.__version__
    assert not [p for p in (tmp_path / "net").iterdir() if p.name.startswith(".tmp-")]
    images = _sample_inputs()[0]["images"]
    served = tf.saved_model.load(path).signatures["explain"](images=tf.constant(images))
    reference = tfcaf.explain(model, images, restarts=2, seed=5, optimizer="adam",
                              end_learning_rate=0.0, max_iterations=ITERATIONS)
    np.testing.assert_allclose(served["maps"].numpy(), reference.maps, atol=1e-4)


def _encoded_images(folder):
    """name -> file of one 9x11 image per mode and depth the bytes
    signature takes, written by PIL and OpenCV."""
    from PIL import Image
    import cv2
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (9, 11, 3), np.uint8)
    palette = Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE)
    writers = {
        "rgb8.png": lambda p: Image.fromarray(rgb).save(p),
        "grey8.png": lambda p: Image.fromarray(rgb[..., 0]).save(p),
        "rgba8.png": lambda p: Image.fromarray(rng.integers(0, 256, (9, 11, 4), np.uint8)).save(p),
        "la8.png": lambda p: Image.fromarray(rng.integers(0, 256, (9, 11, 2), np.uint8),
                                             "LA").save(p),
        "grey16.png": lambda p: cv2.imwrite(p, rng.integers(0, 65536, (9, 11), np.uint16)),
        "rgb16.png": lambda p: cv2.imwrite(p, rng.integers(0, 65536, (9, 11, 3), np.uint16)),
        "rgba16.png": lambda p: cv2.imwrite(p, rng.integers(0, 65536, (9, 11, 4), np.uint16)),
        "palette.png": lambda p: palette.save(p),
        "palette_transparent.png": lambda p: palette.save(p, transparency=0),
        "rgb.jpg": lambda p: Image.fromarray(rgb).save(p, quality=90),
        "cmyk.jpg": lambda p: Image.fromarray(rgb).convert("CMYK").save(p),
        "rgb.gif": lambda p: Image.fromarray(rgb).save(p),
        "rgb.bmp": lambda p: Image.fromarray(rgb).save(p),
    }
    for name, write in writers.items():
        write(str(folder / name))
    return {name: folder / name for name in writers}


def test_bytes_signature_decodes_as_the_library_reads_files(tmp_path):
    """predict_image_bytes decodes in the graph (TF Serving runs no Python)
    to the pixels `tfcaf.data.read_image` gives: 16 bits kept, alpha on
    white, JPEG with PIL's DCT."""
    from tfcaf.data import read_image
    from tfcaf.data.graph_decode import decoded_pixels
    for name, path in _encoded_images(tmp_path).items():
        expected = read_image(str(path), warn=False)
        decoded = decoded_pixels(tf.constant(path.read_bytes())).numpy()
        np.testing.assert_allclose(decoded, expected, atol=1e-4, err_msg=name)
