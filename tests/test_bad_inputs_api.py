"""Bad inputs, the library's user-error boundary and the model / solver
arguments: `tfcaf.explain`'s model, images and layer, `SolverConfig`'s
numbers, `applications.load_model`'s files, weights, sizes and
preprocessing, and the same through bin/visualize, bin/evaluate and
bin/export.

Each row has a verdict: "refused" (one line naming the cause; binaries: a
non-zero status and one `NAME: error:` line), "warned" (status 0 and one
"warning:" line) or "works" (status 0 and the right output).
"""

import json
import os
import re
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest
from PIL import Image

import tfcaf
from bad_input_harness import REPO, Case, run_cases
from tfcaf import applications
from tfcaf.caf import SolverConfig
from tfcaf.data.checks import DataError
from tfcaf.errors import TfcafError
from tfcaf.models import build_model

SIZE = 32
TINY = dict(backbone_options={"filters": (4, 8)}, image_size=SIZE)


def _tiny():
    keras.utils.set_random_seed(0)
    return build_model("tiny_resnet", "classifier", num_classes=3, **TINY)


def _plain():
    """A Keras classifier with no preprocessing: it reads pixels as given."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(x), name="plain")


def _damage(path, folder):
    """Damaged copies of the .keras file `path` in `folder`: a flipped byte
    inside the weights (bad CRC), the first half, random bytes, a zip
    without config.json."""
    data = open(path, "rb").read()
    with zipfile.ZipFile(path) as archive:
        member = archive.getinfo("model.weights.h5")
    flipped = bytearray(data)
    # The member's data starts after its 30-byte local header, name and extra field.
    flipped[member.header_offset + 30 + len(member.filename) + len(member.extra) + 64] ^= 0xFF
    (folder / "crc.keras").write_bytes(bytes(flipped))
    (folder / "half.keras").write_bytes(data[:len(data) // 2])
    (folder / "noise.keras").write_bytes(np.random.default_rng(0).bytes(300))
    with zipfile.ZipFile(folder / "noconfig.keras", "w") as archive:
        archive.writestr("model.weights.h5", b"")


def _folder_dataset(root, classes, per_class=2):
    rng = np.random.default_rng(2)
    for c in range(classes):
        (root / "test" / f"c{c:02d}").mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), np.uint8)).save(
                root / "test" / f"c{c:02d}" / f"{i}.png")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The table's folder: models, damaged copies, weights files, images,
    a 12-class folder dataset and a fake SavedModel."""
    folder = tmp_path_factory.mktemp("api")
    tiny = _tiny()
    tiny.save(str(folder / "tiny.keras"))
    tiny.save_weights(str(folder / "tiny.weights.h5"))
    _plain().save(str(folder / "plain.keras"))
    keras.utils.set_random_seed(3)
    embedding = build_model("tiny_resnet", "embedding", embedding_dim=8, **TINY)
    embedding.save(str(folder / "embedding.keras"))
    embedding.save_weights(str(folder / "other.weights.h5"))
    _damage(str(folder / "tiny.keras"), folder)
    rng = np.random.default_rng(4)
    Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), np.uint8)).save(folder / "a.png")
    Image.fromarray(rng.integers(0, 256, (40, 50, 3), np.uint8)).save(folder / "wide.png")
    _folder_dataset(folder / "twelve", 12)
    (folder / "export" / "1").mkdir(parents=True)
    (folder / "export" / "1" / "saved_model.pb").write_bytes(b"")
    return folder


def _absent(path):
    return lambda folder: not (folder / path).exists() or not os.listdir(folder / path)


def _written(path, *suffixes):
    return lambda folder: all(any((folder / path).glob(f"*{s}")) for s in suffixes)


def _metrics_without_nmi(folder):
    metrics = json.loads((folder / "recall" / "metrics.json").read_text())
    return "recall@1" in metrics["retrieval"] and "nmi" not in metrics["retrieval"]


# Grad-CAM: the rows are about the model, not the solver, and it needs no
# compiled solver loop.
V = ["--images=a.png", "--method=gradcam"]
# (name, verdict, argv, exit status, regex of the error / warning line, check of the
# folder afterwards or None)
VISUALIZE_ROWS = [
    ("no --images", "refused", ["--model=tiny.keras"], 2,
     r"--model and --images are required", None),
    ("no --model", "refused", ["--images=a.png"], 2, r"--model and --images are required",
     None),
    ("missing weights file", "refused",
     ["--model=tiny.keras", "--weights=/nonexistent.h5", "--out_dir=o1"] + V, 1,
     r"weights file '/nonexistent.h5' .*does not exist", _absent("o1")),
    ("weights of another model", "refused",
     ["--model=tiny.keras", "--weights=other.weights.h5", "--out_dir=o2"] + V, 1,
     r"weights file 'other.weights.h5' does not match model", _absent("o2")),
    ("weights=none on a .keras model", "refused",
     ["--model=tiny.keras", "--weights=none", "--out_dir=o3"] + V, 1,
     r"weights='none': 'tiny.keras' is a .keras model with its own weights", _absent("o3")),
    ("image size a fixed model does not take", "refused",
     ["--model=tiny.keras", "--image_size=48", "--out_dir=o4"] + V, 1,
     r"image_size=48x48: model '.*' takes 32x32 images only", _absent("o4")),
    ("bad CRC", "refused", ["--model=crc.keras", "--out_dir=o5"] + V, 1,
     r"'crc.keras' is a damaged .keras file \(Bad CRC-32", _absent("o5")),
    ("truncated .keras", "refused", ["--model=half.keras", "--out_dir=o6"] + V, 1,
     r"'half.keras' is not a .keras model: not a zip archive", _absent("o6")),
    ("random bytes .keras", "refused", ["--model=noise.keras", "--out_dir=o7"] + V, 1,
     r"'noise.keras' is not a .keras model: not a zip archive", _absent("o7")),
    ("zip without config.json", "refused", ["--model=noconfig.keras", "--out_dir=o8"] + V, 1,
     r"the archive has no config.json", _absent("o8")),
    ("savedmodel folder", "refused", ["--model=export/1", "--out_dir=o9"] + V, 1,
     r"is a SavedModel folder", _absent("o9")),
    ("--layer=images (the input)", "refused",
     ["--model=tiny.keras", "--layer=images", "--out_dir=o10"] + V, 1,
     r"layer 'images' is the input of model '.*', not a feature map; split at a layer that "
     r"computes one \(e.g. 'stage2_out'\)", _absent("o10")),
    ("unknown layer", "refused", ["--model=tiny.keras", "--layer=stage9", "--out_dir=o11"] + V,
     1, r"has no layer 'stage9'", _absent("o11")),
    ("non-4-D layer", "refused", ["--model=tiny.keras", "--layer=avg_pool", "--out_dir=o12"] + V,
     1, r"layer 'avg_pool' has output shape .*needs a 4-D", _absent("o12")),
    ("preprocessing on a model that has its own", "refused",
     ["--model=tiny.keras", "--preprocessing=unit", "--out_dir=o13"] + V, 1,
     r"preprocessing='unit': model 'tiny.keras' already preprocesses its input "
     r"\(layer 'preprocessing'", _absent("o13")),
    ("preprocessing on an application", "refused",
     ["--model=ResNet50", "--weights=none", "--preprocessing=tf", "--out_dir=o14"] + V, 1,
     r"application ResNet50 brings its own", _absent("o14")),
    ("unknown preprocessing", "refused", ["--model=plain.keras", "--preprocessing=x255"] + V, 2,
     r"flag --preprocessing=x255: value should be one of <caffe\|torch\|tf\|unit\|none\|clip>", None),
    ("plain model fed raw pixels", "warned", ["--model=plain.keras", "--out_dir=o15"] + V, 0,
     r"^warning: model 'plain.keras' shows no preprocessing .*before its first convolution",
     _written("o15", ".png", ".npy")),
    ("plain model with --preprocessing=unit", "works",
     ["--model=plain.keras", "--preprocessing=unit", "--out_dir=o16"] + V, 0, None,
     _written("o16", ".png", ".npy")),
    ("tfcaf model with its weights file", "works",
     ["--model=tiny.keras", "--weights=tiny.weights.h5", "--out_dir=o17"] + V, 0, None,
     _written("o17", ".png", ".npy")),
    ("image_size equal to the model's", "works",
     ["--model=tiny.keras", "--image_size=32", "--out_dir=o18"] + V, 0, None,
     _written("o18", ".png", ".npy")),
    ("image_size=0", "refused", ["--model=tiny.keras", "--image_size=0"] + V, 2,
     r"flag --image_size=0: 0 is not a positive integer", None),
    ("batch_size=-1", "refused", ["--model=tiny.keras", "--batch_size=-1"] + V, 2,
     r"flag --batch_size=-1: -1 is not a positive integer", None),
    ("iterations=0", "refused", ["--model=tiny.keras", "--images=a.png", "--iterations=0"], 2,
     r"flag --iterations=0: 0 is not a positive integer", None),
    ("restarts=0", "refused", ["--model=tiny.keras", "--restarts=0"] + V, 2,
     r"flag --restarts=0", None),
    ("gif_every=0", "refused", ["--model=tiny.keras", "--gif_every=0"] + V, 2,
     r"flag --gif_every=0", None),
    ("unknown method", "refused", ["--model=tiny.keras", "--method=lime"] + V, 2,
     r"flag --method=lime: value should be one of <l2caf\|", None),
    ("unknown filter", "refused", ["--model=tiny.keras", "--filter=box"] + V, 2,
     r"flag --filter=box: value should be one of", None),
    ("unknown optimizer", "refused", ["--model=tiny.keras", "--optimizer=newton"] + V, 2,
     r"flag --optimizer=newton: value should be one of", None),
    ("unknown solver preset", "refused", ["--model=tiny.keras", "--solver=paper"] + V, 2,
     r"flag --solver=paper: value should be one of", None),
    ("unknown output", "refused", ["--model=tiny.keras", "--output=probs"] + V, 2,
     r"flag --output=probs: value should be one of", None),
    ("non-integer targets", "refused", ["--model=tiny.keras", "--targets=cat"] + V, 2,
     r"flag --targets=\['cat'\]: give class ids, integers >= 0", None),
]

E = ["--dataset=folder", "--data_dir=twelve", "--split=test"]
EVALUATE_ROWS = [
    ("no --model", "refused", [], 2, r"--model is required", None),
    ("image size a fixed model does not take", "refused",
     ["--model=tiny.keras", "--image_size=96", "--out_dir=e1"] + E, 1,
     r"image_size=96x96: model '.*' takes 32x32 images only", _absent("e1")),
    ("12 classes on a 3-class model", "refused",
     ["--model=tiny.keras", "--metric=deletion", "--methods=gradcam", "--out_dir=e2"] + E, 1,
     r"dataset folder/test \(.*\) has 12 classes \(c00, c01, c02, \.\.\., c11\), but model "
     r"'tiny.keras' has 3 class outputs", _absent("e2")),
    ("--metric=recall alone", "works",
     ["--model=embedding.keras", "--metric=recall", "--out_dir=recall"] + E, 0, None,
     _metrics_without_nmi),
    ("bad CRC", "refused", ["--model=crc.keras", "--out_dir=e3"] + E, 1,
     r"'crc.keras' is a damaged .keras file", _absent("e3")),
    ("preprocessing with a SavedModel", "refused",
     ["--model=export/1", "--preprocessing=unit"] + E, 2,
     r"--preprocessing=unit: --model=export/1 is a SavedModel, whose solver settings and "
     r"preprocessing were fixed at export", None),
    ("preprocessing on a model that has its own", "refused",
     ["--model=tiny.keras", "--preprocessing=tf", "--out_dir=e4"] + E, 1,
     r"already preprocesses its input", _absent("e4")),
    ("unknown metric", "refused", ["--model=tiny.keras", "--metric=accuracy"], 2,
     r"--metric: unknown 'accuracy'; choose from iou, maxboxacc", None),
    ("unknown method", "refused", ["--model=tiny.keras", "--methods=gradcam,lime"], 2,
     r"flag --methods=\['gradcam', 'lime'\]: unknown 'lime'; choose from l2caf", None),
    ("cam_threshold=2", "refused", ["--model=tiny.keras", "--cam_threshold=2"], 2,
     r"flag --cam_threshold=2", None),
    ("iou_threshold=-1", "refused", ["--model=tiny.keras", "--iou_threshold=-1"], 2,
     r"flag --iou_threshold=-1", None),
    ("max_images=0", "refused", ["--model=tiny.keras", "--max_images=0"], 2,
     r"flag --max_images=0", None),
    ("batch_size=0", "refused", ["--model=tiny.keras", "--batch_size=0"], 2,
     r"flag --batch_size=0", None),
    ("image_size=-5", "refused", ["--model=tiny.keras", "--image_size=-5"], 2,
     r"flag --image_size=-5", None),
    ("unknown dataset", "refused", ["--model=tiny.keras", "--dataset=mnist"], 2,
     r"flag --dataset=mnist: value should be one of", None),
    ("unknown box protocol", "refused", ["--model=tiny.keras", "--box_protocol=voc"], 2,
     r"flag --box_protocol=voc", None),
    ("unknown sanity mode", "refused", ["--model=tiny.keras", "--sanity_mode=all"], 2,
     r"flag --sanity_mode=all", None),
]

EXPORT_ROWS = [
    ("no --name", "refused", ["--model=tiny.keras"], 2,
     r"--model and --name are required \(or use --check\)", None),
    ("no --model", "refused", ["--name=net"], 2, r"--model and --name are required", None),
    ("unknown preprocessing", "refused", ["--model=tiny.keras", "--name=n",
                                          "--preprocessing=bgr"], 2,
     r"flag --preprocessing=bgr", None),
]

BINARY_ROWS = {"visualize": VISUALIZE_ROWS, "evaluate": EVALUATE_ROWS, "export": EXPORT_ROWS}


@pytest.fixture(scope="module")
def outcomes(files):
    """Every row of every binary, one child interpreter per binary."""
    return {binary: run_cases(binary, [Case(row[0], row[2]) for row in rows], cwd=files)
            for binary, rows in BINARY_ROWS.items()}


@pytest.mark.parametrize("binary,name,verdict,argv,status,line,check", [
    (binary, *row) for binary, rows in BINARY_ROWS.items() for row in rows],
    ids=[f"{binary}: {row[0]}" for binary, rows in BINARY_ROWS.items() for row in rows])
def test_binary(outcomes, files, binary, name, verdict, argv, status, line, check):
    outcome = outcomes[binary][name]
    assert outcome.status == status, outcome.stderr[-3000:]
    lines = [s for s in outcome.stderr.splitlines() if s.strip()]
    errors = [s for s in lines if s.startswith(f"{binary}: error: ")]
    warnings = [s for s in lines if s.startswith("warning:")]
    assert "Traceback" not in outcome.stderr, outcome.stderr[-3000:]
    if verdict == "refused":
        assert errors == [outcome.last_line], outcome.stderr[-3000:]
        assert re.search(line, outcome.last_line), outcome.last_line
    else:
        assert not errors, errors
        if verdict == "warned":
            assert len(warnings) == 1 and re.search(line, warnings[0]), warnings
        else:
            assert not [w for w in warnings if "preprocessing" in w], warnings
    if check is not None:
        assert check(files), name


@pytest.mark.parametrize("binary,argv", [
    ("visualize", ["--model=m.keras"]), ("evaluate", []), ("export", ["--model=m.keras"])])
def test_a_missing_required_flag_is_refused_before_tensorflow(binary, argv):
    code = ("import sys\nfrom tfcaf.cli import launch\n"
            f"module = launch._cli_module({binary!r})\n"
            "try:\n"
            f"    launch._parse_flags({binary!r}, module, [{binary!r}] + {argv!r})\n"
            "except SystemExit as exit_:\n"
            "    print(exit_.code, 'tensorflow' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=REPO)
    assert out.stdout.split() == ["2", "False"], out.stderr[-2000:]
    assert "are required" in out.stderr or "is required" in out.stderr


# Library rows: (name, verdict, call(files, model) -> result, error class, regex)
def _explain(model, images, **options):
    return tfcaf.explain(model, images, method="gradcam", **options)


def _pixels(path):
    return np.asarray(Image.open(path).convert("RGB"), np.float32)[None]


LIBRARY_ROWS = [
    ("model=None", "refused", lambda f, m: tfcaf.explain(None, _pixels(f / "a.png")),
     TfcafError, r"model must be a keras.Model, got None \(NoneType\)"),
    ("model=an array", "refused", lambda f, m: tfcaf.explain(np.zeros((3, 3)), np.zeros(1)),
     TfcafError, r"model must be a keras.Model, got a value \(ndarray\)"),
    ("model=a missing path", "refused", lambda f, m: tfcaf.explain(str(f / "gone.keras"), 0),
     TfcafError, r"model file '.*gone.keras' does not exist"),
    ("layer=42", "refused", lambda f, m: _explain(m, _pixels(f / "a.png"), layer=42),
     TfcafError, r"layer must be a layer name \(str\), or None for the last 4-D layer; got "
     r"42 \(int\); e.g. layer='stage2_out'"),
    ("layer='images'", "refused", lambda f, m: _explain(m, _pixels(f / "a.png"), layer="images"),
     TfcafError, r"layer 'images' is the input of model"),
    ("a list of differently sized arrays", "refused",
     lambda f, m: _explain(m, [np.zeros((SIZE, SIZE, 3)), np.zeros((8, 8, 3))]), TfcafError,
     r"images: a list of arrays of different shapes \(\(32, 32, 3\), \(8, 8, 3\)\)"),
    ("missing image path", "refused", lambda f, m: _explain(m, str(f / "gone.png")),
     DataError, r"gone.png"),
    ("max_iterations=2.5", "refused",
     lambda f, m: tfcaf.explain(m, _pixels(f / "a.png"), max_iterations=2.5),
     TfcafError, r"max_iterations must be an integer in \[1, 2147483647\], got 2.5"),
    ("learning_rate=-0.5", "refused",
     lambda f, m: tfcaf.explain(m, _pixels(f / "a.png"), optimizer="adam",
                                learning_rate=-0.5),
     TfcafError, r"learning_rate must be > 0 and finite, got -0.5"),
    ("load_model preprocessing on an application", "refused",
     lambda f, m: applications.load_model("MobileNetV2", weights="none", preprocessing="tf"),
     TfcafError, r"application MobileNetV2 brings its own"),
    ("load_model unknown preprocessing", "refused",
     lambda f, m: applications.load_model(str(f / "plain.keras"), preprocessing="x255"),
     TfcafError, r"unknown preprocessing mode 'x255'; choose one of caffe, torch"),
    ("input_size of an open model without a default", "refused",
     lambda f, m: applications.input_size(keras.Model(*_open()), default=None), TfcafError,
     r"takes images of any size; give the size with image_size"),
]


def _open():
    inputs = keras.Input((None, None, 3))
    return inputs, keras.layers.Conv2D(2, 3)(inputs)


@pytest.fixture(scope="module")
def tiny(files):
    return applications.load_model(str(files / "tiny.keras"))


@pytest.mark.parametrize("name,verdict,call,kind,error", LIBRARY_ROWS,
                         ids=[row[0] for row in LIBRARY_ROWS])
def test_library_refusals(files, tiny, name, verdict, call, kind, error):
    with pytest.raises(kind, match=error) as raised:
        call(files, tiny)
    assert "\n" not in str(raised.value)


# SolverConfig fields: (name, verdict, overrides, regex or None)
SOLVER_ROWS = [
    ("max_iterations=2.5", "refused", dict(max_iterations=2.5),
     r"max_iterations must be an integer in \[1, 2147483647\], got 2.5"),
    ("max_iterations=True", "refused", dict(max_iterations=True), r"got True"),
    ("max_iterations=1e9 (L-BFGS phases overflow int32)", "refused",
     dict(max_iterations=10 ** 9), r"max_iterations=1000000000 is too large: the 8 solver"),
    ("history=0", "refused", dict(history=0), r"history must be an integer in \[1,"),
    ("check_every=0", "refused", dict(check_every=0), r"check_every must be an integer in \[1,"),
    ("snapshot_every=1.5", "refused", dict(snapshot_every=1.5), r"snapshot_every must be an "
     r"integer in \[0,"),
    ("seed=-1", "refused", dict(seed=-1), r"seed must be an integer in \[0,"),
    ("seed=2**31", "refused", dict(seed=2 ** 31), r"seed must be an integer in \[0, 2147483647\]"),
    ("learning_rate=0", "refused", dict(learning_rate=0.0), r"learning_rate must be > 0"),
    ("learning_rate=nan", "refused", dict(learning_rate=float("nan")),
     r"learning_rate must be > 0 and finite, got nan"),
    ("learning_rate=inf", "refused", dict(learning_rate=float("inf")), r"got inf"),
    ("learning_rate=1e6 with Adam", "refused", dict(optimizer="adam", learning_rate=1e6),
     r"learning_rate=1000000.0 is too large for Adam \(at most 100"),
    ("learning_rate=1e6 with auto (may be Adam)", "refused", dict(learning_rate=1e6),
     r"too large for Adam"),
    ("end_learning_rate above learning_rate", "refused", dict(end_learning_rate=1.0),
     r"end_learning_rate=1.0 is above learning_rate=0.5"),
    ("end_learning_rate=-1", "refused", dict(end_learning_rate=-1.0),
     r"end_learning_rate must be >= 0"),
    ("tolerance=nan", "refused", dict(tolerance=float("nan")), r"tolerance must be >= 0 and "
     r"finite"),
    ("smoothing=-1", "refused", dict(smoothing=-1.0), r"smoothing must be >= 0"),
    ("fold=1", "refused", dict(fold=1), r"fold must be True or False, got 1"),
    ("tolerance=0 (no early stopping)", "works", dict(tolerance=0.0), None),
    ("numpy integers and floats", "works",
     dict(max_iterations=np.int64(7), learning_rate=np.float32(0.25), seed=np.int32(3)), None),
    ("learning_rate=1e6 with SGD", "works", dict(optimizer="sgd", learning_rate=1e6), None),
    ("learning_rate=100 with Adam", "works", dict(optimizer="adam", learning_rate=100.0), None),
]


@pytest.mark.parametrize("name,verdict,overrides,error", SOLVER_ROWS,
                         ids=[row[0] for row in SOLVER_ROWS])
def test_solver_config(name, verdict, overrides, error):
    config = SolverConfig(**overrides)
    if verdict == "works":
        assert config.validate() is config
        return
    with pytest.raises(TfcafError, match=error) as raised:
        config.validate()
    assert "\n" not in str(raised.value)


def test_explain_takes_a_keras_path_and_image_paths(files, tiny):
    """A path where a user would give one: the results equal those of the
    loaded model on the pixels PIL reads (a.png is the model's size, so no
    resizing is involved)."""
    reference = _explain(tiny, _pixels(files / "a.png"))
    from_paths = _explain(str(files / "tiny.keras"), str(files / "a.png"))
    np.testing.assert_allclose(from_paths.maps, reference.maps, atol=1e-6)
    batch = _explain(tiny, [files / "a.png", str(files / "wide.png")])
    assert batch.heatmaps.shape == (2, SIZE, SIZE)
    np.testing.assert_allclose(batch.maps[:1], reference.maps, atol=1e-5)


def test_preprocessing_wraps_a_plain_model_and_the_bare_one_is_warned_about(files, caplog):
    plain = keras.models.load_model(str(files / "plain.keras"))
    pixels = np.random.default_rng(5).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")
    wrapped = applications.load_model(str(files / "plain.keras"), preprocessing="unit")
    np.testing.assert_allclose(wrapped(pixels), plain(pixels / 255.0), rtol=1e-5, atol=1e-6)
    assert not applications.shows_preprocessing(plain)
    assert applications.shows_preprocessing(wrapped)
    inputs = keras.Input((SIZE, SIZE, 3))
    scaled = keras.layers.Lambda(lambda x: x / 127.5 - 1.0)(inputs)
    lambda_model = keras.Model(inputs, keras.layers.Conv2D(2, 3)(scaled))
    assert applications.shows_preprocessing(lambda_model)
    with caplog.at_level("WARNING", logger="tfcaf.applications"):
        applications.load_model(str(files / "plain.keras"))
        applications.load_model(str(files / "tiny.keras"))
    warned = [r.getMessage() for r in caplog.records if r.name == "tfcaf.applications"]
    assert len(warned) == 1 and warned[0].startswith("warning: model '") and \
        "plain.keras' shows no preprocessing" in warned[0]


def test_input_size_is_the_model_s_own_or_asked(tiny):
    model = tiny
    assert applications.input_size(model) == (SIZE, SIZE)
    assert applications.input_size(model, SIZE) == (SIZE, SIZE)
    open_model = keras.Model(*_open())
    assert applications.input_size(open_model) == (224, 224)
    assert applications.input_size(open_model, (48, 64)) == (48, 64)
