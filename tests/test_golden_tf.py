"""Checks of the TensorFlow reference golden files, in the project's venv.

tests/data/golden/xplique.npz (xplique 2.0.2) and tf_keras_vis.npz
(tf-keras-vis 0.8.7) were written by tools/make_xplique_golden.py and
tools/make_tf_keras_vis_golden.py in a side venv (see their docstrings for
the layout and how random tensors and raw maps were captured). These tests
never need that venv. They check that

- the inputs are golden_net's and the Keras networks built here from
  golden_net.make_weights() give the outputs the reference run saved (so
  the port and the inputs are the same);
- every case has its arrays, with the right shapes, finite;
- each saved map is what the library's formula gives on the saved
  activations, gradients, noise, masks and offsets, recomputed here (this
  documents what each library computes, departures from the papers
  included, and is the recipe tfcaf's methods must follow).
"""

import json
import math
import pathlib
import sys

import numpy as np
import pytest
import tensorflow as tf

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import golden_net  # noqa: E402

GOLDEN = ROOT / "tests" / "data" / "golden"
LIBRARIES = ("xplique", "tf_keras_vis")
B, H, C_FEAT = 4, golden_net.IMAGE_SIZE, 16


def _load(library):
    with np.load(GOLDEN / f"{library}.npz") as golden:
        arrays = {key: golden[key] for key in golden.files}
    meta = json.loads(str(arrays.pop("meta")))
    info = json.loads(str(arrays.pop("info")))
    return meta, info, arrays


DATA = {library: _load(library) for library in LIBRARIES}


def _case(library, name):
    meta, _, arrays = DATA[library]
    case = next(c for c in meta if c["name"] == name)
    prefix = name + "."
    fields = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
    return case, fields


def _names(library, *methods):
    return [c["name"] for c in DATA[library][0] if c["method"] in methods]


@pytest.fixture(scope="module")
def nets():
    """Keras models, feature extractor and head split of both networks."""
    import keras
    weights = golden_net.make_weights()
    out = {}
    for kind in ("classifier", "embedding"):
        model = golden_net.keras_model(weights, kind)
        features = model.get_layer(golden_net.FEATURE_LAYER).output
        head_in = keras.Input(features.shape[1:])
        x = head_in
        for layer in model.layers[model.layers.index(model.get_layer(golden_net.FEATURE_LAYER)) + 1:]:
            x = layer(x)
        out[kind] = dict(model=model, trunk=keras.Model(model.inputs, features),
                         head=keras.Model(head_in, x))
    return out


def _cosine(outputs, references):
    """(N,) e.r / max(|e| |r|, 1e-8), the golden files' similarity score."""
    dots = tf.reduce_sum(outputs * references, axis=-1)
    return dots / tf.maximum(tf.norm(outputs, axis=-1) * tf.norm(references, axis=-1), 1e-8)


def _score(library, target, outputs, repeat=1):
    """(N,) the case's score of model outputs (N, D); rows are image-major
    (image i's `repeat` rows together)."""
    arrays = DATA[library][2]
    if target == "similarity":
        refs = np.repeat(arrays["reference_embeddings"], repeat, axis=0)
        return _cosine(outputs, tf.constant(refs))
    ids = np.repeat(arrays[f"target_ids.{target}"], repeat)
    return tf.gather(outputs, ids, axis=1, batch_dims=1)


def _network(target):
    return "embedding" if target == "similarity" else "classifier"


def _input_gradients(nets, library, target, x, repeat=1):
    x = tf.constant(x, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = _score(library, target, nets[_network(target)]["model"](x), repeat)
    return tape.gradient(score, x).numpy()


def _close(actual, expected, rtol=1e-4, atol=0.0):
    """Equal up to float32 rounding of a different summation order (atol:
    extra absolute slack where the values are differences of larger ones)."""
    expected = np.asarray(expected)
    atol = atol + rtol * max(float(np.abs(expected).max()), 1e-12)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


# --- shared ground ------------------------------------------------------

@pytest.mark.parametrize("library", LIBRARIES)
def test_inputs_are_golden_nets(library):
    _, info, arrays = DATA[library]
    np.testing.assert_array_equal(arrays["images"], golden_net.sample_images(seed=1))
    np.testing.assert_array_equal(arrays["reference_images"], golden_net.sample_images(seed=2))
    np.testing.assert_array_equal(arrays["target_ids.class"], np.arange(B))
    np.testing.assert_array_equal(arrays["target_ids.top1"],
                                  arrays["classifier.logits"].argmax(axis=1))
    assert info["versions"]["tensorflow"] == "2.21.0"
    assert info["versions"]["keras"].startswith("3.")


@pytest.mark.parametrize("library", LIBRARIES)
def test_networks_reproduce_reference_outputs(library, nets):
    _, _, arrays = DATA[library]
    images = arrays["images"]
    for kind, saved in (("classifier", "classifier.logits"), ("embedding", "embedding.embeddings")):
        np.testing.assert_allclose(nets[kind]["model"](images).numpy(), arrays[saved], atol=1e-5)
        np.testing.assert_allclose(nets[kind]["trunk"](images).numpy(),
                                   arrays[f"{kind}.features"], atol=1e-5)
    np.testing.assert_allclose(nets["embedding"]["model"](arrays["reference_images"]).numpy(),
                               arrays["reference_embeddings"], atol=1e-5)


EXPECTED_SHAPES = {
    "explanation": (B, H, H, 1), "raw": (B, 16, 16), "gradients": (B, 16, 16, C_FEAT),
    "weights": None, "normalized": (B, H, H), "unnormalized": (B, H, H),
    "score_values": (B,), "scores": (B, 200), "crop_offsets": (B, 7, 2), "channels": None,
}


@pytest.mark.parametrize("library", LIBRARIES)
def test_every_case_has_its_arrays(library):
    meta, _, arrays = DATA[library]
    assert len({c["name"] for c in meta}) == len(meta) >= 21
    for case in meta:
        _, fields = _case(library, case["name"])
        assert set(case["fields"]) == set(fields), case["name"]
        for field, value in fields.items():
            assert np.isfinite(value).all(), (case["name"], field)
            if EXPECTED_SHAPES[field] is not None:
                assert value.shape == EXPECTED_SHAPES[field], (case["name"], field)
        main = fields.get("explanation", fields.get("normalized"))
        assert np.abs(main).max() > 0, case["name"]
    assert all(np.isfinite(v).all() for k, v in arrays.items() if v.dtype.kind == "f")
    # Under ~2 MB, as the brief of issue 22 asks.
    assert (GOLDEN / f"{library}.npz").stat().st_size < 2.1e6


# --- xplique: each map from its formula -----------------------------------

@pytest.mark.parametrize("name", _names("xplique", "saliency"))
def test_xplique_saliency_is_max_abs_gradient(name, nets):
    case, fields = _case("xplique", name)
    grads = _input_gradients(nets, "xplique", case["target"], DATA["xplique"][2]["images"])
    _close(fields["explanation"][..., 0], np.abs(grads).max(axis=-1))


@pytest.mark.parametrize("name", _names("xplique", "smoothgrad"))
def test_xplique_smoothgrad_is_mean_gradient_at_saved_noise(name, nets):
    case, fields = _case("xplique", name)
    arrays = DATA["xplique"][2]
    noise = arrays["smoothgrad.noise"].astype(np.float32)          # (B, 50, 32, 32, 3)
    n = case["settings"]["nb_samples"]
    assert noise.shape == (B, n, H, H, 3) and abs(noise.std() - case["settings"]["noise"]) < 0.01
    noisy = (arrays["images"][:, None] + noise).reshape(B * n, H, H, 3)
    grads = _input_gradients(nets, "xplique", case["target"], noisy, repeat=n)
    # No absolute value (unlike Smilkov et al.'s figures); channels averaged.
    expected = grads.reshape(B, n, H, H, 3).mean(axis=1).mean(axis=-1)
    _close(fields["explanation"][..., 0], expected)


@pytest.mark.parametrize("name", _names("xplique", "integrated_gradients"))
def test_xplique_integrated_gradients_is_trapezoid_rule(name, nets):
    case, fields = _case("xplique", name)
    images = DATA["xplique"][2]["images"]
    steps, baseline = case["settings"]["steps"], case["settings"]["baseline_value"]
    alphas = np.linspace(0.0, 1.0, steps, dtype=np.float32)        # both ends included
    path = baseline + alphas[None, :, None, None, None] * (images[:, None] - baseline)
    grads = _input_gradients(nets, "xplique", case["target"],
                             path.reshape(-1, H, H, 3), repeat=steps).reshape(B, steps, H, H, 3)
    averaged = 0.5 * (grads[:, :-1] + grads[:, 1:]).mean(axis=1)
    _close(fields["explanation"][..., 0], ((images - baseline) * averaged).mean(axis=-1))


def _occlusion_masks(size, stride):
    anchors = [i * stride for i in range(math.ceil((H - size + 1) / stride))]
    masks = np.zeros((len(anchors) ** 2, H, H), bool)
    for k, (y, x) in enumerate((y, x) for y in anchors for x in anchors):
        masks[k, y:y + size, x:x + size] = True
    return masks


@pytest.mark.parametrize("name", _names("xplique", "occlusion", "occlusion_p8s4"))
def test_xplique_occlusion_sums_score_drops_over_patches(name, nets):
    case, fields = _case("xplique", name)
    s = case["settings"]
    images = DATA["xplique"][2]["images"]
    masks = _occlusion_masks(s["patch_size"], s["patch_stride"])
    occluded = np.where(masks[None, :, :, :, None], s["occlusion_value"], images[:, None])
    model = nets[_network(case["target"])]["model"]
    base = _score("xplique", case["target"], model(images)).numpy()
    scores = _score("xplique", case["target"], model(occluded.reshape(-1, H, H, 3)),
                    repeat=len(masks)).numpy().reshape(B, -1)
    # Overlapping patches add up (summed, not averaged as captum does).
    expected = np.einsum("bk,khw->bhw", base[:, None] - scores, masks.astype(np.float32))
    # Each value is a sum of differences of scores: float32 rounding of the
    # scores (1 ulp per term) is the slack. A cosine is a sum of products of
    # unit vectors' entries, whose rounding is 1 ulp of 1, whatever |base|.
    overlap = math.ceil(s["patch_size"] / s["patch_stride"]) ** 2
    magnitude = np.abs(base).max()
    if case["target"] == "similarity":
        magnitude = max(magnitude, 1.0)
    _close(fields["explanation"][..., 0], expected,
           atol=4 * overlap * np.finfo(np.float32).eps * magnitude)
    if s["patch_size"] == 3:      # 10 anchors cover rows/columns 0..29 only
        assert np.all(fields["explanation"][:, 30:] == 0)


@pytest.mark.parametrize("name", _names("xplique", "rise"))
def test_xplique_rise_from_saved_masks_and_crops(name, nets):
    case, fields = _case("xplique", name)
    s = case["settings"]
    arrays = DATA["xplique"][2]
    binary = arrays["rise.masks"]                                  # (N, 7, 7, 1) bool
    assert binary.shape == (s["nb_samples"], s["grid_size"], s["grid_size"], 1)
    up = int(H * (1.0 + 1.0 / s["grid_size"]))
    upsampled = tf.image.resize(binary.astype(np.float32), (up, up)).numpy()
    crops = np.empty((B, s["nb_samples"], H, H, 1), np.float32)
    for i in range(B):
        for c, (dy, dx) in enumerate(fields["crop_offsets"][i]):
            rows = slice(c * s["batch_size"], (c + 1) * s["batch_size"])
            crops[i, rows] = upsampled[rows, dy:dy + H, dx:dx + H]
    masked = crops * arrays["images"][:, None] + (1 - crops) * s["mask_value"]
    model = nets[_network(case["target"])]["model"]
    scores = _score("xplique", case["target"], model(masked.reshape(-1, H, H, 3)),
                    repeat=s["nb_samples"]).numpy().reshape(B, -1)
    _close(scores, fields["scores"])
    # Normalised by each pixel's mask sum (+1e-4), not by N * p as in the paper.
    weighted = np.einsum("bn,bnhwc->bhwc", fields["scores"], crops)
    _close(fields["explanation"], weighted / (crops.sum(axis=1) + 1e-4))


def _feature_gradients(nets, library, target):
    network = _network(target)
    features = tf.constant(DATA[library][2][f"{network}.features"])
    with tf.GradientTape() as tape:
        tape.watch(features)
        score = _score(library, target, nets[network]["head"](features))
    return tape.gradient(score, features).numpy()


@pytest.mark.parametrize("name", _names("xplique", "gradcam", "gradcampp"))
def test_xplique_cams_from_saved_gradients(name, nets):
    case, fields = _case("xplique", name)
    features = DATA["xplique"][2][f"{_network(case['target'])}.features"]
    g = fields["gradients"]
    _close(g, _feature_gradients(nets, "xplique", case["target"]), rtol=1e-3)
    if case["method"] == "gradcam":
        weights = g.mean(axis=(1, 2))
    else:
        # xplique's Grad-CAM++: alpha = g^2 / (2 g^2 + g^3 * mean(A)) (the
        # paper has the spatial sum of A, not the mean), weights = spatial
        # *mean* (the paper: sum) of alpha * relu(g); 1e-4 where the
        # denominator is 0.
        denominator = 2 * g ** 2 + g ** 3 * features.mean(axis=(1, 2), keepdims=True)
        denominator = denominator + (denominator == 0) * 1e-4
        weights = (g ** 2 / denominator * np.maximum(g, 0)).mean(axis=(1, 2))
    _close(fields["weights"], weights, rtol=1e-3)
    raw = np.maximum(np.einsum("bhwc,bc->bhw", features, fields["weights"]), 0)
    _close(fields["raw"], raw)
    # The returned map: bicubic resize of the raw map to the input size.
    resized = tf.image.resize(fields["raw"][..., None], (H, H), method="bicubic").numpy()
    _close(fields["explanation"], resized)


# --- tf-keras-vis: each map from its formula --------------------------------

def _zoom_and_normalize(fields):
    from scipy.ndimage import zoom
    expanded = zoom(fields["raw"], (1, 2, 2), order=1)
    _close(fields["unnormalized"], expanded)
    lo = expanded.min(axis=(1, 2), keepdims=True)
    hi = expanded.max(axis=(1, 2), keepdims=True)
    _close(fields["normalized"], (expanded - lo) / (hi - lo + 1e-7), rtol=1e-3)


@pytest.mark.parametrize("name", _names("tf_keras_vis", "gradcam", "gradcampp", "layercam"))
def test_tf_keras_vis_gradient_cams(name, nets):
    case, fields = _case("tf_keras_vis", name)
    assert case["settings"]["penultimate_layer"] == "features"
    assert case["settings"]["seek_penultimate_conv_layer"] is False
    target = case["target"]
    arrays = DATA["tf_keras_vis"][2]
    features = arrays[f"{_network(target)}.features"]
    g = arrays[f"gradcam.{target}.gradients"]
    _close(g, _feature_gradients(nets, "tf_keras_vis", target), rtol=1e-3)
    if case["method"] == "gradcam":
        raw = np.einsum("bhwc,bc->bhw", features, g.mean(axis=(1, 2)))
    elif case["method"] == "layercam":
        raw = (features * np.maximum(g, 0)).sum(axis=-1)    # ReLU on the gradients
    else:
        # tf-keras-vis's Grad-CAM++: derivatives of exp(score) (exp(S) g,
        # exp(S) g^2, exp(S) g^3), alpha = g^2 / (2 g^2 + g^3 sum(A)) (+1 where
        # g^2 = 0), alphas renormalised to spatial sum 1, weights = spatial
        # sum of alpha * relu(exp(S) g): the map carries a factor exp(S).
        e = np.exp(fields["score_values"])[:, None, None, None]
        first, second, third = e * g, e * g ** 2, e * g ** 3
        denominator = 2 * second + third * features.sum(axis=(1, 2), keepdims=True)
        alphas = second / (denominator + (second == 0))
        total = alphas.sum(axis=(1, 2), keepdims=True)
        alphas = alphas / (total + (total == 0))
        weights = (np.maximum(first, 0) * alphas).sum(axis=(1, 2))
        raw = np.einsum("bhwc,bc->bhw", features, weights)
    _close(fields["raw"], np.maximum(raw, 0), rtol=1e-3)
    _zoom_and_normalize(fields)


@pytest.mark.parametrize("name", _names("tf_keras_vis", "scorecam", "scorecam_n4"))
def test_tf_keras_vis_scorecam(name, nets):
    from scipy.ndimage import zoom
    case, fields = _case("tf_keras_vis", name)
    arrays = DATA["tf_keras_vis"][2]
    network = _network(case["target"])
    features = arrays[f"{network}.features"]
    channels = fields["channels"]
    if case["settings"]["max_N"] is None:
        np.testing.assert_array_equal(channels, np.arange(C_FEAT))
    else:
        std = features.std(axis=(1, 2))                      # (B, C)
        top = np.argsort(-std, axis=1, kind="stable")[:, :case["settings"]["max_N"]]
        _, first = np.unique(top.reshape(-1), return_index=True)
        np.testing.assert_array_equal(channels, top.reshape(-1)[np.sort(first)])
    kept = features[..., channels]
    # Masks: activations zoomed to the input (order 1, mode "nearest"),
    # min-max normalised per channel; the score sees softmax(model output).
    up = zoom(kept, (1, 2, 2, 1), order=1, mode="nearest")
    lo, hi = up.min(axis=(1, 2), keepdims=True), up.max(axis=(1, 2), keepdims=True)
    masks = (up - lo) / (hi - lo + 1e-7)                     # (B, 32, 32, K)
    masked = arrays["images"][None] * np.moveaxis(masks, -1, 0)[..., None]   # (K, B, 32, 32, 3)
    outputs = tf.nn.softmax(nets[network]["model"](masked.reshape(-1, H, H, 3)))
    outputs = tf.reshape(outputs, (len(channels), B, -1))
    weights = np.stack([_score("tf_keras_vis", case["target"], o).numpy() for o in outputs], 1)
    _close(fields["weights"], weights, rtol=1e-3)
    raw = np.maximum(np.einsum("bhwk,bk->bhw", kept, fields["weights"]), 0)
    _close(fields["raw"], raw)
    _zoom_and_normalize(fields)


@pytest.mark.parametrize("name", _names("tf_keras_vis", "saliency", "smoothgrad"))
def test_tf_keras_vis_saliency(name, nets):
    case, fields = _case("tf_keras_vis", name)
    arrays = DATA["tf_keras_vis"][2]
    images = arrays["images"]
    if case["method"] == "saliency":
        expected = np.abs(_input_gradients(nets, "tf_keras_vis", case["target"], images))
    else:
        n = case["settings"]["smooth_samples"]
        noise = arrays["smoothgrad.noise"]                   # (n, B, 32, 32, 3)
        sigma = case["settings"]["smooth_noise"] * (images.max(axis=(1, 2, 3)) -
                                                    images.min(axis=(1, 2, 3)))
        assert noise.shape == (n, B, H, H, 3)
        np.testing.assert_allclose(noise.std(axis=(0, 2, 3, 4)), sigma, rtol=0.05)
        noisy = (images[None] + noise).reshape(n * B, H, H, 3)
        grads = _input_gradients(nets, "tf_keras_vis", case["target"],
                                 np.moveaxis(noisy.reshape(n, B, H, H, 3), 0, 1).reshape(-1, H, H, 3),
                                 repeat=n)
        # |gradient| per sample, then averaged (absolute value first).
        expected = np.abs(grads).reshape(B, n, H, H, 3).mean(axis=1)
    expected = expected.max(axis=-1)
    _close(fields["unnormalized"], expected, rtol=1e-3)
    lo = expected.min(axis=(1, 2), keepdims=True)
    hi = expected.max(axis=(1, 2), keepdims=True)
    _close(fields["normalized"], (expected - lo) / (hi - lo + 1e-7), rtol=1e-3)
