"""The PyTorch reference golden files, checked without PyTorch.

tests/data/golden/{pytorch_grad_cam,captum,rise}.npz are written by
tools/make_torch_golden.py (see its docstring for the layout and how each
internal array was captured) from pytorch-grad-cam, captum and eclique/RISE
on tools/golden_torch_net.py, the PyTorch port of tools/golden_net.py. These
tests prove the files are about tfcaf's networks and inputs (Keras
reproduces the stored logits, embeddings, activations and gradients) and
write down what each library computes: every stored map is recomputed here
from stored arrays, or from the Keras network, by the library's formula.
They are the specification the tfcaf methods will be tested against.
"""

import functools
import json
import pathlib
import sys

import numpy as np
import pytest
import tensorflow as tf

TOOLS = pathlib.Path(__file__).resolve().parent.parent / "tools"
sys.path.insert(0, str(TOOLS))
import golden_net  # noqa: E402

GOLDEN = pathlib.Path(__file__).parent / "data" / "golden"
HEAD = {"classifier": ("head_conv", "gap", "hidden", "logits"),
        "embedding": ("head_conv", "gap", "hidden", "embedding", "l2_normalize")}


@functools.lru_cache(maxsize=None)
def _load(library):
    with np.load(GOLDEN / f"{library}.npz") as golden:
        meta = json.loads(str(golden["meta"]))
        info = json.loads(str(golden["info"]))
        arrays = {k: golden[k] for k in golden.files if k not in ("meta", "info")}
    cases = {case["name"]: case for case in meta}
    for case in meta:
        case["data"] = {f: arrays[f"{case['name']}.{f}"] for f in case["fields"]}
    return cases, info, arrays


@functools.lru_cache(maxsize=None)
def _keras(kind):
    return golden_net.keras_model(golden_net.make_weights(), kind)


def _trunk(kind, images):
    """Keras "features" (B, 16, 16, 16) NHWC."""
    model = _keras(kind)
    x = tf.constant(images)
    for layer in model.layers[1:]:
        x = layer(x)
        if layer.name == golden_net.FEATURE_LAYER:
            return x
    raise AssertionError("no features layer")


def _head(kind, features):
    model = _keras(kind)
    y = features
    for name in HEAD[kind]:
        y = model.get_layer(name)(y)
    return y


def _nchw(x):
    return np.transpose(np.asarray(x), (0, 3, 1, 2))


def _nhwc(x):
    return np.transpose(np.asarray(x), (0, 2, 3, 1))


def _close(actual, expected, rel=1e-5):
    """Equal up to `rel` of the expected array's largest magnitude."""
    expected = np.asarray(expected, np.float64)
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, rtol=0,
                               atol=rel * max(np.abs(expected).max(), 1e-30))


def _cosine(a, b):
    """torch.nn.CosineSimilarity(dim=-1), eps 1e-8, on numpy or tf."""
    num = tf.reduce_sum(a * b, axis=-1)
    den = tf.maximum(tf.norm(a, axis=-1) * tf.norm(b, axis=-1), 1e-8)
    return num / den


# ------------------------------------------------------------ shared inputs

@pytest.mark.parametrize("library", ["pytorch_grad_cam", "captum", "rise"])
def test_inputs_and_network_outputs_are_golden_nets(library):
    _, info, arrays = _load(library)
    images = golden_net.sample_images()
    np.testing.assert_array_equal(arrays["images"], images)
    # The torch port computes Keras' function on the same weights.
    _close(_keras("classifier")(images), arrays["logits"])
    assert arrays["logits"].shape == (4, golden_net.NUM_CLASSES)
    assert "torch" in info["versions"]
    for key, value in arrays.items():
        if value.dtype.kind == "f":
            assert np.all(np.isfinite(value)), key


def test_references_and_embeddings_are_golden_nets():
    _, _, arrays = _load("pytorch_grad_cam")
    references = golden_net.sample_images(seed=2)
    np.testing.assert_array_equal(arrays["references.images"], references)
    _close(_keras("embedding")(golden_net.sample_images()), arrays["embeddings"])
    _close(_keras("embedding")(references), arrays["references.embeddings"])
    np.testing.assert_allclose(np.linalg.norm(arrays["embeddings"], axis=1), 1, atol=1e-6)


# -------------------------------------------------------- pytorch-grad-cam

def _scores(net, case, output):
    """The library's target per image: the class logit, or the cosine
    similarity to reference i (SimilarityToConceptTarget)."""
    _, _, arrays = _load("pytorch_grad_cam")
    if net == "classifier":
        return tf.gather(output, case["target_ids"], axis=1, batch_dims=1)
    return _cosine(output, tf.constant(arrays["references.embeddings"]))


def test_activations_and_gradients_are_keras():
    cases, _, arrays = _load("pytorch_grad_cam")
    images = golden_net.sample_images()
    _close(_nchw(_trunk("classifier", images)), arrays["activations"])
    for net, targets in (("classifier", "ids"), ("classifier", "top1"),
                         ("embedding", "similarity")):
        case = cases[f"GradCAM.{net}.{targets}"]
        features = _trunk(net, images)
        with tf.GradientTape() as tape:
            tape.watch(features)
            score = tf.reduce_sum(_scores(net, case, _head(net, features)))
        gradients = arrays[f"{net}.{targets}.gradients"]
        _close(_nchw(tape.gradient(score, features)), gradients, rel=2e-5)


def _weighted(weights, activations):
    return np.einsum("bk,bkhw->bhw", weights, activations)


def _cam_weights(method, A, G):
    """Channel weights (B, K) as pytorch-grad-cam 1.5.7 computes them."""
    if method == "GradCAM":
        return G.mean(axis=(2, 3))
    if method == "XGradCAM":
        return (G * A / (A.sum(axis=(2, 3), keepdims=True) + 1e-7)).sum(axis=(2, 3))
    if method == "GradCAMPlusPlus":
        # alpha = g^2 / (2 g^2 + sum(A) g^3 + 1e-6), 0 where g == 0;
        # w = sum(relu(g) * alpha): the paper's eq. 19 with exp(S) dropped.
        g2 = G ** 2
        aij = g2 / (2 * g2 + A.sum(axis=(2, 3), keepdims=True) * g2 * G + 1e-6)
        aij = np.where(G != 0, aij, 0)
        return (np.maximum(G, 0) * aij).sum(axis=(2, 3))
    raise AssertionError(method)


def _grad_cam_cases(*methods):
    cases, _, _ = _load("pytorch_grad_cam")
    return [name for name, case in cases.items() if case["method"] in methods]


@pytest.mark.parametrize("name", _grad_cam_cases(
    "GradCAM", "XGradCAM", "GradCAMPlusPlus", "HiResCAM", "LayerCAM"))
def test_gradient_cams_follow_their_formula(name):
    cases, _, arrays = _load("pytorch_grad_cam")
    case = cases[name]
    A = arrays["activations"].astype(np.float64)
    G = arrays[f"{case['net']}.{case['targets']}.gradients"].astype(np.float64)
    data = case["data"]
    if case["method"] == "HiResCAM":
        raw = (G * A).sum(axis=1)
    elif case["method"] == "LayerCAM":
        raw = (np.maximum(G, 0) * A).sum(axis=1)  # ReLU on the gradients
    else:
        weights = _cam_weights(case["method"], A, G)
        _close(data["weights"], weights, rel=1e-5)
        raw = _weighted(weights, A)
    _close(data["cam_raw"], raw, rel=1e-5)


def test_eigencam_is_the_first_principal_component_unsigned():
    cases, _, arrays = _load("pytorch_grad_cam")
    A = arrays["activations"].astype(np.float64)
    for net in ("classifier", "embedding"):
        raw = cases[f"EigenCAM.{net}.none"]["data"]["cam_raw"]
        for b in range(len(A)):
            X = A[b].reshape(A.shape[1], -1).T
            X = X - X.mean(axis=0)
            v = np.linalg.svd(X)[2][0]
            projection = (X @ v).reshape(A.shape[2:])
            # The library takes np.linalg.svd's sign as it comes (no fix):
            # only the magnitude is defined by the method.
            _close(np.abs(raw[b]), np.abs(projection), rel=1e-5)
            # On these images LAPACK's sign is the one that makes the
            # largest-magnitude entry of the first right singular vector
            # positive (sklearn's svd_flip, v-based): a rule tfcaf can use
            # to reproduce these maps (it also gives max > |min| here).
            v_flipped = v * np.sign(v[np.argmax(np.abs(v))])
            _close(raw[b], (X @ v_flipped).reshape(A.shape[2:]), rel=1e-5)
            assert raw[b].max() > abs(raw[b].min())
        # Both nets share the trunk: EigenCAM cannot tell them apart.
        np.testing.assert_array_equal(raw, cases["EigenCAM.classifier.none"]["data"]["cam_raw"])


def _upsample_align_corners(maps, size):
    """torch.nn.UpsamplingBilinear2d(size): bilinear, align_corners=True;
    maps (B, K, h, w) -> (B, K, size, size)."""
    h = maps.shape[-1]
    src = np.arange(size) * (h - 1) / (size - 1)
    i0 = np.minimum(np.floor(src).astype(int), h - 2)
    frac = src - i0
    rows = maps[..., i0, :] * (1 - frac)[:, None] + maps[..., i0 + 1, :] * frac[:, None]
    return rows[..., i0] * (1 - frac) + rows[..., i0 + 1] * frac


@pytest.mark.parametrize("name", _grad_cam_cases("ScoreCAM"))
def test_scorecam_softmax_of_masked_input_scores(name):
    cases, _, arrays = _load("pytorch_grad_cam")
    case = cases[name]
    data = case["data"]
    A = arrays["activations"].astype(np.float64)
    if "scores" in data:
        scores = data["scores"].astype(np.float64)
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        _close(data["weights"], e / e.sum(axis=1, keepdims=True), rel=1e-5)
        if case["net"] == "classifier":
            # The scores: the target logit of the image times each channel
            # upsampled (align_corners=True) and min-max normalised (+1e-8).
            up = _upsample_align_corners(A, 32)
            lo = up.min(axis=(2, 3), keepdims=True)
            hi = up.max(axis=(2, 3), keepdims=True)
            masks = (up - lo) / (hi - lo + 1e-8)
            x = golden_net.sample_images()
            masked = x[:, None] * masks[..., None]  # (B, K, 32, 32, 3)
            masked = masked.reshape(-1, 32, 32, 3).astype(np.float32)
            logits = np.asarray(_keras("classifier")(masked))
            logits = logits.reshape(4, 16, -1)
            ours = logits[np.arange(4), :, case["target_ids"]]
            _close(ours, scores, rel=1e-5)
    _close(data["cam_raw"], _weighted(data["weights"].astype(np.float64), A), rel=1e-5)


@pytest.mark.parametrize("name", _grad_cam_cases("AblationCAM"))
def test_ablationcam_relative_drop_of_zeroed_channels(name):
    cases, _, arrays = _load("pytorch_grad_cam")
    case = cases[name]
    data = case["data"]
    A = arrays["activations"].astype(np.float64)
    assert case["settings"]["ablation_value"] == 0.0
    if "ablated_scores" in data:
        original, ablated = data["original_scores"], data["ablated_scores"]
        _close(data["weights"], (original[:, None] - ablated) / original[:, None], rel=1e-5)
        # Zero channel k of the features, run the head: the ablated score.
        net = case["net"]
        features = _nhwc(arrays["activations"])
        batch = np.repeat(features, 16, axis=0).reshape(4, 16, 16, 16, 16)
        batch[:, np.arange(16), :, :, np.arange(16)] = 0
        out = _head(net, tf.constant(batch.reshape(64, 16, 16, 16)))
        if net == "classifier":
            ours = np.asarray(out).reshape(4, 16, -1)[np.arange(4), :, case["target_ids"]]
            _close(original, np.asarray(arrays["logits"])[np.arange(4), case["target_ids"]])
        else:
            refs = np.repeat(arrays["references.embeddings"], 16, axis=0)
            ours = np.asarray(_cosine(out, tf.constant(refs))).reshape(4, 16)
            _close(original, _cosine(arrays["embeddings"], arrays["references.embeddings"]))
        _close(ours, ablated, rel=1e-5)
    _close(data["cam_raw"], _weighted(data["weights"].astype(np.float64), A), rel=1e-5)


def _min_max(cam):
    cam = cam - cam.min(axis=(1, 2), keepdims=True)
    return cam / (1e-7 + cam.max(axis=(1, 2), keepdims=True))


def _resize_half_pixel(cam, size):
    """cv2.resize(INTER_LINEAR) upsampling: half-pixel centres, edges
    replicated (= tf.image.resize bilinear)."""
    n = cam.shape[-1]
    src = np.clip((np.arange(size) + 0.5) * n / size - 0.5, 0, n - 1)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, n - 1)
    frac = src - i0
    rows = cam[:, i0, :] * (1 - frac)[:, None] + cam[:, i1, :] * frac[:, None]
    return rows[:, :, i0] * (1 - frac) + rows[:, :, i1] * frac


@pytest.mark.parametrize("name", _grad_cam_cases(
    "GradCAM", "XGradCAM", "GradCAMPlusPlus", "HiResCAM", "LayerCAM",
    "EigenCAM", "ScoreCAM", "AblationCAM"))
def test_final_cam_is_relu_min_max_resize_min_max(name):
    cases, _, _ = _load("pytorch_grad_cam")
    data = cases[name]["data"]
    assert data["cam_raw"].shape == (4, 16, 16) and data["cam"].shape == (4, 32, 32)
    raw = np.maximum(data["cam_raw"].astype(np.float64), 0)
    ours = _min_max(_resize_half_pixel(_min_max(raw), 32))
    np.testing.assert_allclose(data["cam"], ours, atol=2e-6)
    assert data["cam"].max() > 0.99


def test_grad_cam_file_covers_every_method_and_target():
    cases, info, _ = _load("pytorch_grad_cam")
    assert info["versions"]["grad-cam"] == "1.5.7"
    for method in ("GradCAM", "GradCAMPlusPlus", "XGradCAM", "HiResCAM", "LayerCAM",
                   "ScoreCAM", "AblationCAM"):
        for suffix in ("classifier.ids", "classifier.top1", "embedding.similarity"):
            assert f"{method}.{suffix}" in cases
    assert {"EigenCAM.classifier.none", "EigenCAM.embedding.none"} <= set(cases)
    top1 = cases["GradCAM.classifier.top1"]["target_ids"]
    np.testing.assert_array_equal(top1, np.argmax(_load("pytorch_grad_cam")[2]["logits"], 1))


# ------------------------------------------------------------------ captum

def _input_gradients(images, target_ids):
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = _keras("classifier")(x)
        score = tf.reduce_sum(tf.gather(logits, target_ids, axis=1, batch_dims=1))
    return np.asarray(tape.gradient(score, x), np.float64)


def _captum(method):
    cases, _, _ = _load("captum")
    return [n for n, c in cases.items() if c["method"] == method]


@pytest.mark.parametrize("name", _captum("IntegratedGradients"))
def test_integrated_gradients(name):
    cases, _, arrays = _load("captum")
    case, x = cases[name], golden_net.sample_images()
    data, ids = case["data"], np.asarray(case["target_ids"])
    assert data["attributions"].shape == (4, 3, 32, 32)
    assert data["alphas"].shape == data["step_sizes"].shape == (case["settings"]["n_steps"],)
    np.testing.assert_array_equal(data["attributions_nhwc"], _nhwc(data["attributions"]))
    # Completeness gap as captum reports it: sum(attr) - (f(x) - f(0)).
    rows = np.arange(4)
    gap = (data["attributions"].sum(axis=(1, 2, 3))
           - (arrays["logits"][rows, ids] - arrays["baseline_logits"][rows, ids]))
    np.testing.assert_allclose(data["delta"], gap, atol=2e-6)
    _close(_keras("classifier")(np.zeros_like(x)), arrays["baseline_logits"])
    # attr = (x - 0) * sum_i step_sizes[i] * grad f(alphas[i] * x).
    alphas, steps = data["alphas"], data["step_sizes"]
    path = (alphas[:, None, None, None, None] * x[None]).reshape(-1, 32, 32, 3)
    grads = _input_gradients(path.astype(np.float32), np.tile(ids, len(alphas)))
    grads = grads.reshape(len(alphas), 4, 32, 32, 3)
    ours = x * np.einsum("s,sbhwc->bhwc", steps.astype(np.float64), grads)
    _close(data["attributions_nhwc"], ours, rel=1e-5)


@pytest.mark.parametrize("name", _captum("Saliency") + _captum("NoiseTunnel(Saliency)"))
def test_saliency_and_smoothgrad(name):
    cases, _, _ = _load("captum")
    case, x = cases[name], golden_net.sample_images()
    data, ids = case["data"], np.asarray(case["target_ids"])
    assert data["attributions"].shape == (4, 3, 32, 32)
    np.testing.assert_array_equal(data["attributions_nhwc"], _nhwc(data["attributions"]))
    if "noise" in data:
        n = case["settings"]["nt_samples"]
        noisy = np.repeat(x, n, axis=0) + _nhwc(data["noise"])  # repeat_interleave
        grads = np.abs(_input_gradients(noisy.astype(np.float32), np.repeat(ids, n)))
        ours = grads.reshape(4, n, 32, 32, 3).mean(axis=1)
        assert abs(data["noise"].std() - case["settings"]["stdevs"]) < 0.05
    else:
        ours = np.abs(_input_gradients(x, ids))
    _close(data["attributions_nhwc"], ours, rel=1e-5)


# -------------------------------------------------------------------- RISE

def _skimage_resize_linear_reflect(grid, size):
    """skimage.transform.resize(order=1, mode='reflect', anti_aliasing=False):
    half-pixel bilinear, outside samples mirrored (ndimage 'mirror')."""
    n = grid.shape[-1]
    src = (np.arange(size) + 0.5) * n / size - 0.5
    i0 = np.floor(src).astype(int)
    frac = src - i0
    mirror = lambda i: np.where(i < 0, -i, np.where(i > n - 1, 2 * (n - 1) - i, i))  # noqa: E731
    a, b = mirror(i0), mirror(i0 + 1)
    rows = grid[:, a, :] * (1 - frac)[:, None] + grid[:, b, :] * frac[:, None]
    return rows[:, :, a] * (1 - frac) + rows[:, :, b] * frac


def test_rise_masks_are_the_drawn_grid_upsampled_and_shifted():
    cases, info, arrays = _load("rise")
    settings = cases["RISE.classifier.logits"]["settings"]
    N, s, p1 = settings["N"], settings["s"], settings["p1"]
    assert info["commit"] == "d91ea006d4bb9b7990347fe97086bdc0f5c1fe10"
    assert arrays["masks"].shape == (N, 1, 32, 32)
    np.testing.assert_array_equal(arrays["grid"], arrays["grid_uniform"] < p1)
    cell = int(np.ceil(32 / s))
    up = _skimage_resize_linear_reflect(arrays["grid"].astype(np.float64), (s + 1) * cell)
    for i, (dx, dy) in enumerate(arrays["shifts"]):
        np.testing.assert_allclose(arrays["masks"][i, 0], up[i, dx:dx + 32, dy:dy + 32],
                                   atol=1e-6)


@functools.lru_cache(maxsize=None)
def _rise_outputs():
    """Keras outputs of every masked image: (B, N, 5) logits."""
    _, _, arrays = _load("rise")
    masks = arrays["masks"][:, 0]
    x = golden_net.sample_images()
    stack = (masks[None, :, :, :, None] * x[:, None]).reshape(-1, 32, 32, 3)
    return np.asarray(_keras("classifier")(stack)).reshape(4, len(masks), -1)


@pytest.mark.parametrize("output", ["logits", "softmax"])
def test_rise_saliency_is_mask_average_weighted_by_scores(output):
    cases, _, arrays = _load("rise")
    settings = cases[f"RISE.classifier.{output}"]["settings"]
    p = _rise_outputs().astype(np.float64)
    if output == "softmax":
        p = np.exp(p - p.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
    masks = arrays["masks"][:, 0].astype(np.float64)
    batch = np.einsum("bnc,nhw->bchw", p, masks)  # RISEBatch: no normalisation
    rise = cases[f"RISE.classifier.{output}"]["data"]["saliency"]
    _close(cases[f"RISEBatch.classifier.{output}"]["data"]["saliency"], batch, rel=1e-5)
    _close(rise, batch / settings["N"] / settings["p1"], rel=1e-5)
    assert rise.shape == (4, golden_net.NUM_CLASSES, 32, 32)


def _causal_curve(image, explanation, substrate, cls, mode, step, softmax):
    """CausalMetric.single_run in numpy/Keras: pixels in the order of
    np.flip(np.argsort(saliency)), `step` per step, n_steps + 1 scores."""
    order = np.flip(np.argsort(explanation.reshape(-1)))
    start, finish = (image, substrate) if mode == "del" else (substrate, image)
    start = start.reshape(-1, 3).copy()
    frames = []
    n_steps = (1024 + step - 1) // step
    for i in range(n_steps + 1):
        frames.append(start.reshape(32, 32, 3).copy())
        coords = order[step * i:step * (i + 1)]
        start[coords] = finish.reshape(-1, 3)[coords]
    out = np.asarray(_keras("classifier")(np.stack(frames).astype(np.float32)), np.float64)
    if softmax:
        out = np.exp(out - out.max(-1, keepdims=True))
        out /= out.sum(-1, keepdims=True)
    return out[:, cls]


@pytest.mark.parametrize("name", [f"CausalMetric.{m}.{o}" for m in ("del", "ins")
                                  for o in ("softmax", "logits")])
def test_causal_metric_deletion_insertion_curves(name):
    cases, _, arrays = _load("rise")
    case = cases[name]
    data = case["data"]
    x = golden_net.sample_images()
    # The insertion substrate is the image convolved with gkern(11, 5),
    # zero padding 5 (a per-channel blur: the kernel is diagonal).
    kernel = arrays["causal.kernel"]
    assert np.all(kernel[0, 1] == 0) and np.all(kernel[1, 1] == kernel[0, 0])
    blurred = tf.nn.conv2d(x, np.transpose(kernel, (2, 3, 1, 0)), 1,
                           [[0, 0], [5, 5], [5, 5], [0, 0]])  # OIHW -> HWIO
    _close(_nchw(blurred), arrays["causal.blurred_nchw"], rel=1e-5)
    source = f"RISE.classifier.{case['model_output']}"
    np.testing.assert_array_equal(
        data["explanation"],
        cases[source]["data"]["saliency"][np.arange(4), case["target_ids"]])
    substrate = np.zeros_like(x) if case["mode"] == "del" else _nhwc(arrays["causal.blurred_nchw"])
    for b in range(4):
        ours = _causal_curve(x[b], data["explanation"][b], substrate[b], case["target_ids"][b],
                             case["mode"], case["settings"]["step"],
                             case["model_output"] == "softmax")
        _close(data["scores"][b], ours, rel=1e-5)
    curves = data["scores"].astype(np.float64)
    auc = (curves.sum(1) - curves[:, 0] / 2 - curves[:, -1] / 2) / (curves.shape[1] - 1)
    np.testing.assert_allclose(data["auc"], auc, rtol=1e-6)
