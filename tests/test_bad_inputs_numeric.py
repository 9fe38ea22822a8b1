"""Bad inputs, numeric: non-finite weights, images and objectives, and the
SavedModel explain signature's targets. Never a plausible map from values
that went NaN (the solver's initial random filter would look like one).

Each row has a verdict: "refused" (an error naming the cause), "status"
(the SavedModel returns NaN maps and says why), "works".
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfcaf
from bad_input_harness import Case, run_cases
from tfcaf.caf.finite import NonFiniteError
from tfcaf.errors import TfcafError
from tfcaf.export import export_savedmodel

SIZE = 16


def _model(nan_in=None, seed=0):
    """A tiny classifier on raw pixels; `nan_in` names a layer ("conv",
    "logits") one of whose kernel entries is set to NaN."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", name="conv")(inputs)
    # No ReLU after the split layer's conv: a ReLU maps NaN to 0.
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", name="last_conv")(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(4, name="logits")(x))
    if nan_in:
        kernel = model.get_layer(nan_in).kernel
        value = kernel.numpy()
        value[0, 0] = np.nan
        kernel.assign(value)
    return model


def _images(scale=1.0, count=2):
    rng = np.random.default_rng(0)
    return (rng.uniform(0, 1, (count, SIZE, SIZE, 3)) * scale).astype(np.float32)


# (name, verdict, model kwargs, images, explain kwargs, error class, error regex)
LIBRARY_ROWS = [
    ("nan weight in the features, l2caf", "refused", dict(nan_in="conv"), _images(), dict(),
     NonFiniteError,
     r"outputs are NaN or infinite for image\(s\) \[0, 1\].*features at layer 'last_conv'"),
    ("nan weight in the head, l2caf", "refused", dict(nan_in="logits"), _images(), dict(),
     NonFiniteError, r"NaN or infinite for image\(s\) \[0, 1\].*head after layer"),
    ("nan weight, gradcam", "refused", dict(nan_in="logits"), _images(),
     dict(method="gradcam"), NonFiniteError, r"NaN or infinite for image\(s\) \[0, 1\]"),
    ("nan weight, l2caf_specific", "refused", dict(nan_in="conv"), _images(),
     dict(method="l2caf_specific", targets=[1, 2]), NonFiniteError, r"NaN or infinite"),
    ("pixels of 1e28, l2caf", "refused", dict(), _images(1e28), dict(), NonFiniteError,
     r"NaN or infinite .*largest \|(pixel|feature)"),
    ("pixels of 1e28, adam", "refused", dict(), _images(1e28), dict(optimizer="adam"),
     NonFiniteError, r"NaN or infinite"),
    ("nan pixels", "refused", dict(), np.full((1, SIZE, SIZE, 3), np.nan, np.float32), dict(),
     TfcafError, r"image\(s\) \[0\] of the batch contain NaN or infinite values"),
    ("float target", "refused", dict(), _images(),
     dict(method="l2caf_specific", targets=0.5), TfcafError,
     r"targets must be integer class ids"),
    ("target out of range", "refused", dict(), _images(),
     dict(method="l2caf_specific", targets=[4, 0]), TfcafError,
     r"class ids in \[0, 4\); got 4"),
    ("large but finite pixels", "works", dict(), _images(255.0), dict(), None, None),
]


@pytest.mark.parametrize("name,verdict,model_kwargs,images,kwargs,kind,error", LIBRARY_ROWS,
                         ids=[row[0] for row in LIBRARY_ROWS])
def test_library(name, verdict, model_kwargs, images, kwargs, kind, error):
    model = _model(**model_kwargs)
    options = dict(kwargs) if kwargs.get("method") == "gradcam" else \
        dict(max_iterations=30, **kwargs)
    if verdict == "works":
        explanation = tfcaf.explain(model, images, **options)
        assert np.isfinite(explanation.maps).all()
        assert (explanation.iterations > 1).all()
        return
    with pytest.raises(kind, match=error):
        tfcaf.explain(model, images, **options)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    path = export_savedmodel(_model(), str(tmp_path_factory.mktemp("numeric")), "net",
                             iterations=30)
    return tf.saved_model.load(path).signatures


def _explain(signatures, images, targets):
    if targets is None:
        return signatures["explain_oblivious"](images=tf.constant(images))
    return signatures["explain"](images=tf.constant(images),
                                 targets=tf.constant(targets, tf.int32))


# (name, images, targets, expected status per image, or an error regex)
SIGNATURE_ROWS = [
    ("finite images", _images(255.0), [-1, 2], ["ok", "ok"], None),
    ("all-nan image", np.concatenate([_images(255.0, 1), np.full((1, SIZE, SIZE, 3), np.nan,
                                                                 np.float32)]),
     [-1, -1], ["ok", "non-finite image"], None),
    # The class-oblivious loss squares outputs of ~1e29 (inf); the
    # class-specific one is linear in them and stays finite.
    ("pixels of 1e28, oblivious", np.concatenate([_images(255.0, 1), _images(1e28, 1)]),
     None, ["ok", "non-finite objective"], None),
    ("pixels of 1e28, specific", np.concatenate([_images(255.0, 1), _images(1e28, 1)]),
     [1, 1], ["ok", "ok"], None),
    ("target 99 of 4 classes", _images(255.0), [99, 0], None,
     r"targets must be class ids in \[0, 4\) or -1.*99"),
    ("target -2", _images(255.0), [-2, 0], None, r"or -1 \(the top-1 class\); got.*-2"),
    ("one target for two images", _images(255.0), [1], None, r"one target per image"),
]


@pytest.mark.parametrize("name,images,targets,statuses,error", SIGNATURE_ROWS,
                         ids=[row[0] for row in SIGNATURE_ROWS])
def test_savedmodel_explain(exported, name, images, targets, statuses, error):
    if error:
        with pytest.raises(tf.errors.InvalidArgumentError, match=error):
            _explain(exported, images, targets)
        return
    out = _explain(exported, images, targets)
    status = [s.decode() for s in out["status"].numpy()]
    for got, want, maps in zip(status, statuses, out["maps"].numpy()):
        assert got in want.split("|"), (got, want)
        # A map is finite exactly when its status is ok.
        assert np.isfinite(maps).all() == (got == "ok")
    assert np.isnan(out["heatmaps"].numpy()[np.array(status) != "ok"]).all()
    if statuses[0] == "ok":
        # An ok row is the library's map for the same image and target.
        options = {} if targets is None else dict(
            method="l2caf_specific", targets=[int(out["targets"].numpy()[0])])
        reference = tfcaf.explain(_model(), images[:1], max_iterations=30, **options)
        np.testing.assert_allclose(out["maps"].numpy()[0], reference.maps[0], atol=1e-4)


def test_binaries_refuse_a_model_with_a_nan_weight(tmp_path):
    _model(nan_in="logits").save(str(tmp_path / "nan.keras"))
    keras.utils.save_img(str(tmp_path / "a.png"), _images(255.0, 1)[0], scale=False)
    outcomes = run_cases("visualize", [
        Case("nan weight", ["--model=nan.keras", "--images=a.png", "--out_dir=out",
                            "--iterations=20"]),
        Case("nan weight, gradcam", ["--model=nan.keras", "--images=a.png",
                                     "--out_dir=out2", "--method=gradcam"]),
    ], cwd=tmp_path)
    for name, outcome in outcomes.items():
        assert outcome.status == 1, (name, outcome.stderr)
        assert "NaN or infinite for image(s) [0]" in outcome.last_line, outcome.stderr
        assert outcome.last_line.startswith("visualize: error: ")
    assert not os.path.exists(tmp_path / "out" / "a.png")
