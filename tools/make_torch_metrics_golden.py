"""Writes tests/data/golden/torch_metrics.npz: pytorch-grad-cam 1.5.7's ROAD
and confidence metrics and TorchRay's pointing game, run by the reference
libraries themselves on golden_net's PyTorch port and its 4 sample images.

Runs in the side virtualenv made by tools/make_torch_metrics_golden.sh (CPU
torch), never in the project's; tests/test_road_golden.py reads the file.
Layout as tools/make_torch_golden.py: `meta` is a JSON list of cases (name,
method, settings, fields: the arrays `<name>.<field>`), `info` a JSON dict.
Shared arrays: `images` (4, 32, 32, 3) NHWC = golden_net.sample_images(),
`logits` (4, 5) torch logits, `heatmaps` (4, 32, 32) float32 (the cams every
metric case is given: GradCAMPlusPlus on features_relu for class ids 0..3,
except image 2, a pattern of 64 plateaus of 16 pixels so that percentile
thresholds fall on ties), `heatmaps.gradcam` (4, 32, 32) (GradCAM, mostly
zero on images 1 and 2), `noise_field` (4, 32, 32, 3) float32 standard
normal draws (numpy default_rng(7)), `pointing.*` (the pointing game).

ROAD noise. NoisyLinearImputer adds `noise * torch.randn_like(res.t())`
((C, n) for the n removed pixels, row-major) to the solved values. While a
case runs, `torch.randn_like` is replaced by a stand-in that either
- "recorded": calls the real torch.randn_like (after torch.manual_seed(0))
  and logs its draws, stored as `<case>.draws_nhwc` (4, 32, 32, 3), the
  draw of removed pixel (y, x) channel c at [i, y, x, c], zero elsewhere; or
- "field": returns noise_field[i] at the removed pixels (same layout), so the
  cases that average over 9 percentiles need no per-call storage.
The image index i is found by comparing the imputer's input with the batch;
the imputer's code runs unchanged. Each PerturbationConfidenceMetric call's
return value is logged (class-level wrapper) to give per-percentile curves.
"""

import argparse
import contextlib
import hashlib
import pathlib
import sys
import tarfile
import types

import numpy as np
import torch

TOOLS = pathlib.Path(__file__).resolve().parent
REPO = TOOLS.parent
sys.path.insert(0, str(TOOLS))
import golden_net  # noqa: E402
import golden_torch_net  # noqa: E402
import make_torch_golden as mtg  # noqa: E402  (torchvision stand-in, versions)

OUT = REPO / "tests" / "data" / "golden" / "torch_metrics.npz"
IDS = [0, 1, 2, 3]
PERCENTILES = [10, 20, 30, 40, 50, 60, 70, 80, 90]
TORCHRAY = "torchray-1.0.0.2"
POINTING_TOLERANCES = [0, 1, 3, 15]


def plateau_map(seed=5):
    """(32, 32) float32: 8 x 8 blocks of 4 x 4 pixels, values (k + 0.5) / 64
    for a permutation k of 0..63 (exact in float32, and so is 1 - value)."""
    levels = (np.random.default_rng(seed).permutation(64) + 0.5) / 64
    return np.kron(levels.reshape(8, 8), np.ones((4, 4))).astype(np.float32)


def heatmaps(model, x):
    import pytorch_grad_cam as pgc
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    maps = {}
    for name, cls in (("gradcampp", pgc.GradCAMPlusPlus), ("gradcam", pgc.GradCAM)):
        cam = cls(model=model, target_layers=[model.features_relu])
        maps[name] = np.float32(cam(input_tensor=x.clone(),
                                    targets=[ClassifierOutputTarget(c) for c in IDS]))
        cam.activations_and_grads.release()
    main = maps["gradcampp"].copy()
    main[2] = plateau_map()
    return main, maps["gradcam"]


class NoiseStandIn:
    """torch.randn_like during a case: "recorded" or "field" draws (module
    docstring); also logs each imputer call's removed-pixel count."""

    def __init__(self, x, mode, field):
        self.x, self.mode, self.field = x, mode, field
        self.current = None
        self.draws = np.zeros(field.shape, np.float32)
        self.calls = []

    def imputer_call(self, original):
        def call(imputer, img, mask):
            index = next(i for i in range(len(self.x)) if torch.equal(img, self.x[i]))
            removed = mask.reshape(-1).numpy() == 0
            self.current = (index, removed)
            self.calls.append((index, int(removed.sum())))
            return original(imputer, img, mask)
        return call

    def randn_like(self, original):
        def draw(tensor, *args, **kwargs):
            index, removed = self.current
            channels = tensor.shape[0]
            assert tensor.shape == (channels, removed.sum()), tensor.shape
            if self.mode == "field":
                values = self.field[index].reshape(-1, channels)[removed].T
                return torch.from_numpy(np.ascontiguousarray(values, np.float32))
            values = original(tensor, *args, **kwargs)
            flat = self.draws[index].reshape(-1, channels)
            flat[removed] = values.numpy().T
            return values
        return draw


@contextlib.contextmanager
def road_run(x, mode, field):
    """Installs NoiseStandIn and a log of PerturbationConfidenceMetric
    returns; yields (stand_in, returns)."""
    from pytorch_grad_cam.metrics import perturbation_confidence as pc
    from pytorch_grad_cam.metrics import road
    stand_in, returns = NoiseStandIn(x, mode, field), []
    originals = (road.NoisyLinearImputer.__call__, torch.randn_like,
                 pc.PerturbationConfidenceMetric.__call__)

    def metric_call(self, *args, **kwargs):
        value = originals[2](self, *args, **kwargs)
        returns.append(np.array(value[0] if isinstance(value, tuple) else value, copy=True))
        return value
    road.NoisyLinearImputer.__call__ = stand_in.imputer_call(originals[0])
    torch.randn_like = stand_in.randn_like(originals[1])
    pc.PerturbationConfidenceMetric.__call__ = metric_call
    try:
        yield stand_in, returns
    finally:
        road.NoisyLinearImputer.__call__, torch.randn_like, \
            pc.PerturbationConfidenceMetric.__call__ = originals


def make_targets(score):
    from pytorch_grad_cam.utils.model_targets import (ClassifierOutputSoftmaxTarget,
                                                      ClassifierOutputTarget)
    cls = ClassifierOutputSoftmaxTarget if score == "softmax" else ClassifierOutputTarget
    return [mtg.RecordingTarget(cls(c)) for c in IDS]


def road_cases(model, x, cams, cams_gradcam, field, put):
    from pytorch_grad_cam.metrics import road
    counts_of = lambda calls: np.int32([n for _, n in calls]).reshape(-1, len(IDS))  # noqa
    # Single percentiles with the reference's own torch draws.
    for cls, percentile in ((road.ROADMostRelevantFirst, 80),
                            (road.ROADLeastRelevantFirst, 20)):
        torch.manual_seed(0)
        targets = make_targets("softmax")
        with road_run(x, "recorded", field) as (stand_in, _):
            scores, perturbed = cls(percentile)(x, cams, targets, model,
                                                return_visualization=True)
        log = np.float32([t.log for t in targets])  # (4, 2): before, after
        fields = {"scores": np.float32(scores), "scores_before": log[:, 0],
                  "scores_after": log[:, 1], "draws_nhwc": stand_in.draws,
                  "removed_counts": counts_of(stand_in.calls)[0]}
        if percentile == 80:
            fields["imputed_nhwc"] = golden_torch_net.to_nhwc(perturbed)
        put(f"{cls.__name__}.p{percentile}.softmax", cls.__name__,
            {"percentile": percentile, "noise": 0.01, "draws": "recorded",
             "torch.manual_seed": 0, "targets": "ClassifierOutputSoftmaxTarget"}, fields)
    # Averages over percentiles with the stored noise field.
    classes = {"ROADMostRelevantFirstAverage": ["morf"],
               "ROADLeastRelevantFirstAverage": ["lerf"],
               "ROADCombined": ["lerf", "morf"]}  # ROADCombined runs LeRF first
    for (method, orders), score in [(c, "softmax") for c in classes.items()] + \
            [(("ROADCombined", classes["ROADCombined"]), "logit")]:
        targets = make_targets(score)
        with road_run(x, "field", field) as (stand_in, returns):
            scores = getattr(road, method)(PERCENTILES)(x, cams, targets, model)
        curves = np.float32(returns).reshape(len(orders), len(PERCENTILES), len(IDS))
        counts = counts_of(stand_in.calls).reshape(len(orders), len(PERCENTILES), len(IDS))
        fields = {"scores": np.float32(scores)}
        for order, curve, count in zip(orders, curves, counts):
            fields[f"{order}_curve"] = curve.T.copy()      # (4, P)
            fields[f"{order}_removed_counts"] = count.T.copy()
        put(f"{method}.{score}", method,
            {"percentiles": PERCENTILES, "noise": 0.01, "draws": "noise_field",
             "targets": "ClassifierOutputSoftmaxTarget" if score == "softmax"
             else "ClassifierOutputTarget (raw logit)"}, fields)
    # Heatmaps with a zero plateau over 10% of pixels: every pixel removed.
    targets = make_targets("softmax")
    with np.errstate(all="ignore"), road_run(x, "field", field) as (stand_in, _):
        scores = road.ROADMostRelevantFirst(10)(x, cams_gradcam, targets, model)
    put("ROADMostRelevantFirst.p10.gradcam", "ROADMostRelevantFirst",
        {"percentile": 10, "noise": 0.01, "draws": "noise_field", "heatmaps":
         "heatmaps.gradcam", "targets": "ClassifierOutputSoftmaxTarget"},
        {"scores": np.float32(scores), "removed_counts": counts_of(stand_in.calls)[0]})


def confidence_cases(model, x, cams, put):
    from pytorch_grad_cam.metrics import cam_mult_image as cmi
    for cls in (cmi.CamMultImageConfidenceChange, cmi.DropInConfidence,
                cmi.IncreaseInConfidence):
        targets = make_targets("softmax")
        scores = cls()(x, cams, targets, model)
        log = np.float32([t.log for t in targets])
        put(f"{cls.__name__}.softmax", cls.__name__,
            {"targets": "ClassifierOutputSoftmaxTarget", "heatmaps": "heatmaps",
             "perturbation": "input_tensor * cam (NCHW model input times (H, W) cam)"},
            {"scores": np.float32(scores), "scores_before": log[:, 0],
             "scores_after": log[:, 1]})


def load_pointing_game(sdist):
    """torchray.benchmark.pointing_game from the PyPI sdist, its imports of
    torchvision.datasets and .datasets (used only by PointingGameBenchmark)
    answered by stand-ins."""
    golden_torch_net.install_torchvision_stand_in()
    for name in ("torchray", "torchray.benchmark", "torchray.benchmark.datasets"):
        module = types.ModuleType(name)
        module.__path__ = []
        sys.modules[name] = module
    with tarfile.open(sdist) as archive:
        source = archive.extractfile(
            f"{TORCHRAY}/torchray/benchmark/pointing_game.py").read().decode()
    module = types.ModuleType("torchray.benchmark.pointing_game")
    module.__package__ = "torchray.benchmark"
    exec(compile(source, f"{TORCHRAY}/torchray/benchmark/pointing_game.py", "exec"),
         module.__dict__)
    return module


POINTING_SIZE = 48
# (point (x, y) of the planted maximum or None, boxes (x0, y0, x1, y1) exclusive)
_BOX = (16, 16, 26, 26)  # pixels 16..25
POINTING_PLANTS = [
    ((20, 20), [_BOX]),                    # inside
    ((28, 20), [_BOX]),                    # 3 right of the last column
    ((27, 20), [_BOX]),                    # 2 right
    ((1, 20), [_BOX]),                     # 15 left of the first column
    ((39, 20), [_BOX]),                    # 14 right
    ((36, 36), [_BOX]),                    # (11, 11) diagonal: d^2 = 242
    ((35, 35), [_BOX]),                    # (10, 10) diagonal: d^2 = 200
    ((20, 12), [_BOX]),                    # 4 above
    ((44, 5), [(0, 30, 8, 40), (30, 0, 40, 10)]),  # 4 right of the second box
    ("tie", [_BOX]),                       # equal maxima at (2, 2) and (20, 20)
    ("constant", [(0, 0, 5, 5)]),          # constant map: argmax (0, 0)
    ((45, 45), [(0, 0, 10, 10)]),          # far
]


def pointing_inputs():
    rng = np.random.default_rng(3)
    count = len(POINTING_PLANTS)
    # Background: multiples of 1/64 below 0.5 (compresses; the maxima are 1).
    maps = (rng.integers(0, 32, (count, POINTING_SIZE, POINTING_SIZE)) / 64).astype(np.float32)
    masks = np.zeros(maps.shape, bool)
    boxes = -np.ones((count, 2, 4), np.int32)
    for i, (plant, rows) in enumerate(POINTING_PLANTS):
        if plant == "tie":
            maps[i, 2, 2] = maps[i, 20, 20] = 1.0
        elif plant == "constant":
            maps[i] = 0.5
        else:
            maps[i, plant[1], plant[0]] = 1.0
        for j, (x0, y0, x1, y1) in enumerate(rows):
            boxes[i, j] = (x0, y0, x1, y1)
            masks[i, y0:y1, x0:x1] = True
    return maps, masks, boxes, np.arange(count, dtype=np.int64) % 3


def saliency_to_point(saliency):
    """TorchRay examples/attribution_benchmark.py `_saliency_to_point`:
    torch.argmax of the flattened (1, 1, H, W) map -> (u, v) = (x, y)."""
    width = saliency.shape[3]
    point = torch.argmax(saliency.view(len(saliency), -1), dim=1, keepdim=True)
    return torch.cat((point % width, point // width), dim=1)


def pointing_cases(sdist, put, arrays):
    module = load_pointing_game(sdist)
    maps, masks, boxes, class_ids = pointing_inputs()
    points = np.stack([saliency_to_point(torch.from_numpy(m)[None, None])[0].numpy()
                       for m in maps])
    arrays.update({"pointing.heatmaps": maps, "pointing.masks": masks,
                   "pointing.boxes": boxes, "pointing.points": points,
                   "pointing.class_ids": class_ids})
    for tolerance in POINTING_TOLERANCES:
        game = module.PointingGame(3, tolerance=tolerance)
        hits = []
        for mask, point, class_id in zip(masks, points, class_ids):
            hit = game.evaluate(torch.from_numpy(mask), tuple(int(p) for p in point))
            game.aggregate(hit, int(class_id))
            hits.append(hit)
        put(f"PointingGame.tol{tolerance}", "PointingGame",
            {"tolerance": tolerance, "num_classes": 3},
            {"hits": np.int8(hits), "class_accuracies": game.class_accuracies.numpy(),
             "accuracy": np.float64(game.accuracy.item())})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=pathlib.Path, default=OUT)
    parser.add_argument("--torchray-sdist", type=pathlib.Path, required=True,
                        help=f"{TORCHRAY}.tar.gz from PyPI (pip download torchray==1.0.0.2)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    golden_torch_net.install_torchvision_stand_in()
    weights = golden_net.make_weights()
    images, x, logits, _ = mtg._common(weights)
    model = golden_torch_net.torch_model(weights, "classifier")
    cams, cams_gradcam = heatmaps(model, x)
    field = np.random.default_rng(7).standard_normal(images.shape, dtype=np.float32)
    arrays = {"images": images, "logits": logits, "heatmaps": cams,
              "heatmaps.gradcam": cams_gradcam, "noise_field": field}
    meta = []

    def put(name, method, settings, fields):
        for key, value in fields.items():
            arrays[f"{name}.{key}"] = np.asarray(value)
        meta.append({"name": name, "method": method, "settings": settings,
                     "target_ids": IDS if "Pointing" not in method else None,
                     "fields": sorted(fields)})
    road_cases(model, x, cams, cams_gradcam, field, put)
    confidence_cases(model, x, cams, put)
    pointing_cases(args.torchray_sdist, put, arrays)
    info = {"library": "pytorch-grad-cam (PyPI grad-cam) metrics; TorchRay pointing game",
            "versions": {"grad-cam": mtg._version("grad-cam"), "torch": torch.__version__,
                         "numpy": np.__version__, "scipy": mtg._version("scipy"),
                         "torchray": TORCHRAY, "torchray_sdist_sha256": hashlib.sha256(
                             args.torchray_sdist.read_bytes()).hexdigest()},
            "notes": [line for line in __doc__.split("\n\n")[1:]]}
    size = golden_net.save(args.out, meta, info, arrays)
    print(f"wrote {len(meta)} cases, {len(arrays)} arrays to {args.out} ({size:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
