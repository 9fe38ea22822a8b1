"""Writes tests/data/golden/quantus.npz: Quantus's own scores on golden_net's
PyTorch port (tools/golden_torch_net.py) and the 4 sample images, for
tfcaf.metrics.map_complexity / correlation / sensitivity and the lead's pointing
game and MPRT parity tests.

Runs in the side virtualenv made by tools/make_quantus_golden.sh (CPU torch,
Quantus's PyTorch path: its TensorFlow path needs TF < 2.16), never in the
project's. The Keras net tfcaf evaluates computes the same function
(tests/test_golden_torch.py).

Layout (golden_net.save): `meta` is a JSON list of cases (name, method,
settings under Quantus's own argument names, `fields`: the case's arrays,
stored as `<name>.<field>`); `info` a JSON dict (versions, notes). Shared
arrays: `images` (4, 32, 32, 3) NHWC float32 = golden_net.sample_images()
(Quantus gets them NCHW), `target_ids` (4,) = [0, 1, 2, 3] (Quantus's
y_batch), `logits` (4, 5) the torch logits, and the heatmaps that metrics
with an `a_batch` are given, (N, 32, 32) float32 (Quantus adds the channel
axis itself):

- `heatmaps.saliency` (4, 32, 32): `saliency_explain` (below) on the images;
- `heatmaps.planted` (4, 32, 32): a constant 0.5 map, a one-hot 0.25 map,
  a Gaussian blob (max 1) and a signed N(0, 1) map (seeded), so that abs
  and the batch-wide normalisation (normalise_by_max over the whole a_batch,
  not per image) change the scores visibly.

Random draws. Quantus draws with numpy's legacy global RandomState, which
np.random.seed(seed) fixes before each call (seed in the case's settings).
np.random.choice / np.random.uniform are wrapped during the call to record
every draw; the script checks that np.random.RandomState(seed) replays them
exactly, and stores their sha256 (`subsets_sha256` / `noise_sha256`, of the
C-order little-endian bytes, int64 / float64) instead of the arrays (the
sensitivity noise alone is 200 x 4 x 3072 doubles), so tests regenerate the
reference's draws and prove them equal by the digest:

- FaithfulnessCorrelation: for run r in range(nr_runs), for image b:
  np.random.choice(3 * 32 * 32, subset_size, replace=False): flat indices
  into the image's NCHW (3, 32, 32) values -> (nr_runs, N, subset_size).
- Avg/MaxSensitivity: for sample s: np.random.uniform(-lower_bound,
  lower_bound, (N, 3 * 32 * 32)), NCHW flat -> (nr_samples, N, 3072),
  added in float64 to the float32 images, the sum stored back as float32.

Internals are recorded through Quantus's own injection points, forwarding
unchanged: FaithfulnessCorrelation's similarity_func (correlation_pearson)
logs its inputs `att_sums` and `pred_deltas` (N, nr_runs) float32;
Avg/MaxSensitivity's norm_numerator / norm_denominator (fro_norm) log each
step's norms, whose quotient is `similarities` (N, nr_samples) float32; the
MPRT explain_func logs the raw explanations it returns.
"""

import argparse
import contextlib
import hashlib
import pathlib
import sys
import warnings

import numpy as np
import scipy.stats
import torch

TOOLS = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(TOOLS))
import golden_net  # noqa: E402
import golden_torch_net  # noqa: E402

OUT = TOOLS.parent / "tests" / "data" / "golden" / "quantus.npz"
IDS = [0, 1, 2, 3]
MPRT_LAYERS = ["out", "hidden", "head_conv", "features", "conv1"]  # top_down


def saliency_explain(model, inputs, targets, **kwargs):
    """Quantus explain_func: |d logit[target] / d input|, max over the
    colour channels -> (B, 32, 32) float32 (inputs NCHW numpy)."""
    x = torch.tensor(np.asarray(inputs, np.float32), requires_grad=True)
    chosen = model(x)[torch.arange(len(x)), torch.as_tensor(np.asarray(targets))]
    (grad,) = torch.autograd.grad(chosen.sum(), x)
    return grad.abs().amax(dim=1).numpy()


def input_x_gradient_explain(model, inputs, targets, **kwargs):
    """Quantus explain_func for MPRT (signed, so that its abs matters):
    sum over channels of input * d logit[target] / d input -> (B, 32, 32)."""
    x = torch.tensor(np.asarray(inputs, np.float32), requires_grad=True)
    chosen = model(x)[torch.arange(len(x)), torch.as_tensor(np.asarray(targets))]
    (grad,) = torch.autograd.grad(chosen.sum(), x)
    return (grad * x).sum(dim=1).detach().numpy()


def planted_heatmaps():
    """(4, 32, 32) float32: constant, one-hot, blob, signed (see the module
    docstring)."""
    maps = np.zeros((4, 32, 32), np.float32)
    maps[0] = 0.5
    maps[1, 5, 7] = 0.25
    yy, xx = np.mgrid[:32, :32]
    maps[2] = np.exp(-((yy - 20) ** 2 + (xx - 12) ** 2) / 18.0)
    maps[3] = np.random.default_rng(5).normal(0, 1, (32, 32))
    return maps


def square_masks(images):
    """(N, 32, 32) bool: the bright square of each sample image (its only
    pixels above 0.5 in every channel)."""
    return (images > 0.5).all(axis=-1)


def digest(array, dtype):
    return hashlib.sha256(np.ascontiguousarray(array, dtype=dtype).tobytes()).hexdigest()


@contextlib.contextmanager
def recording(name, log):
    """Wraps np.random.<name>, appending every result to `log`."""
    original = getattr(np.random, name)

    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        log.append(np.array(result, copy=True))
        return result

    setattr(np.random, name, wrapper)
    try:
        yield
    finally:
        setattr(np.random, name, original)


def replay_subsets(seed, runs, count, features, size):
    """(runs, count, size) the legacy RandomState draws of
    FaithfulnessCorrelation after np.random.seed(seed)."""
    state = np.random.RandomState(seed)
    return np.array([[state.choice(features, size, replace=False) for _ in range(count)]
                     for _ in range(runs)])


def replay_noise(seed, samples, count, features, bound):
    state = np.random.RandomState(seed)
    return np.array([state.uniform(-bound, bound, (count, features)) for _ in range(samples)])


class Recorder:
    """Forwards to `func` and logs its arguments and results."""

    def __init__(self, func):
        self.func, self.calls = func, []

    def __call__(self, *args, **kwargs):
        result = self.func(*args, **kwargs)
        self.calls.append((args, kwargs, result))
        return result


def complexity_cases(quantus, x, heatmaps, meta, arrays):
    variants = {"default": {}, "no_normalise": {"normalise": False},
                "raw": {"abs": False, "normalise": False}}
    for method in ("Sparseness", "Complexity"):
        for maps_name, maps in heatmaps.items():
            for variant, settings in variants.items():
                if method == "Complexity" and variant == "raw":
                    continue  # log of negative values: NaN
                metric = getattr(quantus, method)(disable_warnings=True, **settings)
                scores = metric(model=None, x_batch=x, y_batch=np.array(IDS), a_batch=maps.copy(),
                                channel_first=True)
                name = f"{method}.{maps_name}.{variant}"
                arrays[f"{name}.scores"] = np.asarray(scores)
                full = {"abs": True, "normalise": True, **settings}
                meta.append({"name": name, "method": method, "heatmaps": f"heatmaps.{maps_name}",
                             "settings": full, "fields": ["scores"]})


def faithfulness_cases(quantus, model, x, heatmaps, meta, arrays):
    runs, size, features = 100, 224, int(np.prod(x.shape[1:]))
    cases = [("saliency", "logits", 0.0, 7), ("saliency", "softmax", 0.0, 8),
             ("planted", "softmax", 0.5, 9)]
    for maps_name, score, baseline, seed in cases:
        similarity = Recorder(quantus.similarity_func.correlation_pearson)
        metric = quantus.FaithfulnessCorrelation(
            similarity_func=similarity, nr_runs=runs, subset_size=size,
            perturb_baseline=baseline, return_aggregate=False, disable_warnings=True)
        draws = []
        np.random.seed(seed)
        with recording("choice", draws), warnings.catch_warnings():
            warnings.simplefilter("ignore", scipy.stats.ConstantInputWarning)
            scores = metric(model=model, x_batch=x, y_batch=np.array(IDS),
                            a_batch=heatmaps[maps_name].copy(), channel_first=True,
                            softmax=score == "softmax")
        draws = np.array(draws).reshape(runs, len(x), size)
        assert np.array_equal(draws, replay_subsets(seed, runs, len(x), features, size))
        (args, kwargs, _), = similarity.calls
        name = f"FaithfulnessCorrelation.{maps_name}.{score}"
        arrays.update({f"{name}.scores": np.asarray(scores, np.float32),
                       f"{name}.att_sums": kwargs["a"], f"{name}.pred_deltas": kwargs["b"],
                       f"{name}.subsets_first_run": draws[0].astype(np.int16)})
        meta.append({
            "name": name, "method": "FaithfulnessCorrelation", "net": "classifier",
            "heatmaps": f"heatmaps.{maps_name}", "target_ids": IDS,
            "settings": {"nr_runs": runs, "subset_size": size, "perturb_baseline": baseline,
                         "softmax": score == "softmax", "abs": False, "normalise": True,
                         "similarity_func": "correlation_pearson", "return_aggregate": False},
            "seed": seed, "subsets_sha256": digest(draws, "<i8"),
            "subsets_layout": "(nr_runs, N, subset_size) int64 flat NCHW indices, run-major",
            "fields": ["scores", "att_sums", "pred_deltas", "subsets_first_run"]})


def sensitivity_cases(quantus, model, x, meta, arrays):
    samples, bound, features, seed = 200, 0.2, int(np.prod(x.shape[1:])), 11
    for method in ("AvgSensitivity", "MaxSensitivity"):
        numerator = Recorder(quantus.norm_func.fro_norm)
        denominator = Recorder(quantus.norm_func.fro_norm)
        metric = getattr(quantus, method)(
            nr_samples=samples, lower_bound=bound, norm_numerator=numerator,
            norm_denominator=denominator, disable_warnings=True)
        draws = []
        np.random.seed(seed)
        with recording("uniform", draws):
            scores = metric(model=model, x_batch=x, y_batch=np.array(IDS),
                            explain_func=saliency_explain, channel_first=True)
        draws = np.array(draws)
        assert draws.shape == (samples, len(x), features)
        assert np.array_equal(draws, replay_noise(seed, samples, len(x), features, bound))
        similarities = np.stack([n[2] / d[2] for n, d in zip(numerator.calls, denominator.calls)],
                                axis=1)
        assert similarities.dtype == np.float32
        reduce = np.mean if method == "AvgSensitivity" else np.max
        np.testing.assert_allclose(reduce(similarities.astype(np.float64), axis=1), scores,
                                   rtol=1e-12)
        name = f"{method}.saliency"
        arrays.update({f"{name}.scores": np.asarray(scores, np.float64),
                       f"{name}.similarities": similarities})
        meta.append({
            "name": name, "method": method, "net": "classifier", "target_ids": IDS,
            "explain_func": "saliency: |d logit[target] / d x|, max over channels",
            "settings": {"nr_samples": samples, "lower_bound": bound, "upper_bound": None,
                         "norm_numerator": "fro_norm", "norm_denominator": "fro_norm",
                         "similarity_func": "difference", "abs": False, "normalise": False,
                         "return_nan_when_prediction_changes": False},
            "seed": seed, "noise_sha256": digest(draws, "<f8"),
            "noise_layout": "(nr_samples, N, 3072) float64 NCHW flat, sample-major",
            "fields": ["scores", "similarities"]})


def pointing_cases(quantus, images, saliency, meta, arrays):
    masks = square_masks(images)
    planted = np.zeros((8, 32, 32), np.float32)
    planted_masks = np.zeros((8, 32, 32), bool)
    planted_masks[:, 8:16, 8:16] = True
    planted[0, 10, 10] = 1.0                        # max inside: hit
    planted[1, 25, 25] = 1.0                        # max outside: miss
    planted[2, 10, 10] = planted[2, 25, 25] = 1.0   # tied maxima, one inside: hit
    planted[3] = 0.3                                # constant: every pixel a max: hit
    planted[4, 10, 10] = 1.0
    planted_masks[4] = False                        # empty mask (Quantus: NaN -> True)
    planted[5, 10, 10], planted[5, 25, 25] = 0.5, -2.0  # signed: hit, miss with abs
    planted[6, 8, 8], planted[6, 15, 15] = 0.9, 1.0     # mask corners, inclusive: hit
    planted[7, 16, 16] = 1.0                        # just past the mask: miss
    nan_maps = np.stack([planted[0], planted[0]])
    nan_maps[0, 3, 3] = np.nan                      # batch-wide normalise spreads the NaN
    sets = {"saliency": (saliency, masks), "planted": (planted, planted_masks),
            "nan": (nan_maps, planted_masks[:2])}
    arrays.update({"masks.squares": masks, "heatmaps.pointing": planted,
                   "masks.pointing": planted_masks, "heatmaps.pointing_nan": nan_maps,
                   "masks.pointing_nan": planted_masks[:2]})
    keys = {"saliency": ("heatmaps.saliency", "masks.squares"),
            "planted": ("heatmaps.pointing", "masks.pointing"),
            "nan": ("heatmaps.pointing_nan", "masks.pointing_nan")}
    # weighted=True is left out: Quantus 0.6.0 raises there (a (k, 1)
    # array assigned to hit[hit], np.sum(..., keepdims=True)).
    variants = [("saliency", {}), ("planted", {}), ("planted", {"abs": True}), ("nan", {})]
    for set_name, settings in variants:
        maps, s = sets[set_name]
        metric = quantus.PointingGame(disable_warnings=True, **settings)
        x = np.zeros((len(maps), 3, 32, 32), np.float32)
        hits = metric(model=None, x_batch=x, y_batch=np.zeros(len(maps), int),
                      a_batch=maps.copy(), s_batch=s[:, None].astype(np.float32),
                      channel_first=True)
        suffix = "".join(f".{k}" for k in settings) or ".default"
        name = f"PointingGame.{set_name}{suffix}"
        arrays[f"{name}.hits"] = np.asarray(hits)
        meta.append({"name": name, "method": "PointingGame", "heatmaps": keys[set_name][0],
                     "masks": keys[set_name][1],
                     "settings": {"weighted": False, "abs": False, "normalise": True,
                                  **settings},
                     "fields": ["hits"]})


def mprt_cases(quantus, model, x, meta, arrays):
    explain = Recorder(input_x_gradient_explain)
    metric = quantus.MPRT(disable_warnings=True)
    scores = metric(model=model, x_batch=x, y_batch=np.array(IDS), explain_func=explain,
                    channel_first=True)
    raw = [call[2] for call in explain.calls]
    # custom_preprocess (a_batch), then the original model again, then one
    # call per layer.
    assert len(raw) == 2 + len(MPRT_LAYERS) and np.array_equal(raw[0], raw[1])
    assert list(scores) == ["original"] + MPRT_LAYERS, list(scores)
    explanations = np.stack(raw[1:])
    # The formula the lead's test checks, recomputed here on the stored maps.
    processed = [np.abs(e / np.abs(e).max()) for e in explanations]
    for layer, maps in zip(["original"] + MPRT_LAYERS, processed):
        mine = [scipy.stats.spearmanr(processed[0][i].ravel(), maps[i].ravel())[0]
                for i in range(len(x))]
        np.testing.assert_allclose(mine, scores[layer], rtol=0, atol=1e-12)
    average = quantus.MPRT(disable_warnings=True, return_average_correlation=True)(
        model=model, x_batch=x, y_batch=np.array(IDS), explain_func=input_x_gradient_explain,
        channel_first=True)
    arrays["MPRT.top_down.explanations"] = explanations
    arrays["MPRT.top_down.scores"] = np.array([scores[k] for k in ["original"] + MPRT_LAYERS])
    arrays["MPRT.top_down.average"] = np.asarray(average)
    meta.append({
        "name": "MPRT.top_down", "method": "MPRT", "net": "classifier", "target_ids": IDS,
        "explain_func": "input x gradient: sum over channels of x * d logit[target] / d x",
        "settings": {"layer_order": "top_down", "seed": 42, "abs": True, "normalise": True,
                     "similarity_func": "correlation_spearman",
                     "return_average_correlation": False, "return_last_correlation": False,
                     "skip_layers": False},
        "layers": ["original"] + MPRT_LAYERS,
        "fields": ["explanations", "scores", "average"]})


def main():
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    import quantus
    from importlib import metadata
    torch.use_deterministic_algorithms(True)
    weights = golden_net.make_weights()
    model = golden_torch_net.torch_model(weights, "classifier")
    images = golden_net.sample_images()
    x = golden_torch_net.to_nchw(images).numpy()
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).numpy()
    saliency = saliency_explain(model, x, IDS)
    heatmaps = {"saliency": saliency, "planted": planted_heatmaps()}
    meta, arrays = [], {"images": images, "target_ids": np.array(IDS, np.int32),
                        "logits": logits, "heatmaps.saliency": saliency,
                        "heatmaps.planted": heatmaps["planted"]}
    complexity_cases(quantus, x, heatmaps, meta, arrays)
    faithfulness_cases(quantus, model, x, heatmaps, meta, arrays)
    sensitivity_cases(quantus, model, x, meta, arrays)
    pointing_cases(quantus, images, saliency, meta, arrays)
    mprt_cases(quantus, model, x, meta, arrays)
    info = {"library": "quantus", "versions": {p: metadata.version(p) for p in
                                               ("quantus", "torch", "numpy", "scipy")},
            "net": "tools/golden_torch_net.py classifier, NCHW images in [0, 1]",
            "notes": __doc__}
    size = golden_net.save(OUT, meta, info, {k: np.asarray(v) for k, v in arrays.items()})
    print(f"wrote {len(meta)} cases, {len(arrays)} arrays to {OUT} ({size:.0f} KiB)")


if __name__ == "__main__":
    main()
