"""Writes tests/data/golden/xplique_metrics.npz: xplique 2.0.2's Deletion,
Insertion, AverageDropMetric, AverageIncreaseMetric and MuFidelity, and
pytorch-grad-cam 1.5.7's DropInConfidence / IncreaseInConfidence, on the
golden networks of tools/golden_net.py, for
tests/test_xplique_metrics_golden.py.

Two parts, run by tools/make_xplique_metrics_golden.sh in two side
virtualenvs (never in the project's venv):

  --part gradcam  (a venv with torch 2.13 CPU and grad-cam 1.5.7) runs
                  pytorch-grad-cam's own metric classes on the PyTorch port
                  of the networks (tools/golden_torch_net.py) and writes an
                  intermediate .npz;
  --part xplique  (.venv-xplique: tensorflow-cpu 2.21, xplique --no-deps)
                  runs xplique's metrics on golden_net.keras_model (images in
                  [0, 1], no preprocessing layer, xplique's baseline value =
                  tfcaf's substrate) and writes the golden file, with the
                  gradcam part's arrays copied in.

Inputs: `images` = golden_net.sample_images(seed=1) (4, 32, 32, 3) in
[0, 1]; `heatmaps.unit` (4, 32, 32) float32 in [0, 1] (each image's mean
colour plus seeded noise, min-max scaled; no two pixels of a map tie, so
"which pixel goes first" never depends on the sort) and `heatmaps.signed`
= 2 · unit − 0.7 (negative values, for xplique's |·| and min-max).

Targets: "top1" / "class" = one-hot (B, 5) of the classifier's arg-max / of
ids [0, 1, 2, 3], scored with activation="softmax" (score = softmax
probability, tfcaf's classifier score); "similarity" = the embedding net
with the custom operator cos(model(x), t) and targets t = the embeddings of
the unperturbed images (tfcaf's embedding=True score).

Captured internals:
  Deletion/Insertion  the per-image scores of every step (xplique only keeps
      their mean): `batch_inference_function` wrapped, `<case>.curves`
      (N, S + 1); `<case>.mean_curve` = detailed_evaluate's values,
      `<case>.auc` = evaluate().
  AverageDrop/Increase  `<case>.per_image` = detailed_evaluate on the whole
      batch, `<case>.score` = evaluate(), `<case>.base` / `<case>.after`
      the scores before and after masking.
  MuFidelity  `MuFidelity._perturb_samples` (a tf.function drawing
      tf.random.uniform grids) runs as xplique's own, seeded with
      tf.random.set_seed(MUFIDELITY_SEED) per case; the grid it drew is
      read back from its nearest-upsampled masks: `<case>.subsets`
      (N, nb_samples, g, g) bool, True = the cell is in the subset set to
      the baseline (xplique's mask 0). `scipy.stats.spearmanr` inside
      xplique is wrapped: `<case>.drops` (base − perturbed scores),
      `<case>.attributions` (sum of the map over the subset), both
      (N, nb_samples), and `<case>.correlations` (N,); `<case>.score` =
      evaluate().
  pytorch-grad-cam  `gradcam.<case>.result` the metric's return (N,),
      `gradcam.<case>.before` / `.after` the target scores it computed
      (recorded by a pass-through target wrapper).

Layout: `meta` a JSON list of {name, metric, library, class, network,
target, heatmaps, settings}; `info` JSON of versions and seeds.
"""

import argparse
import json
import pathlib
import sys

import numpy as np

TOOLS = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(TOOLS))
import golden_net  # noqa: E402

REPO = TOOLS.parent
DEFAULT_OUT = REPO / "tests" / "data" / "golden" / "xplique_metrics.npz"
HEATMAP_SEED = 31
MUFIDELITY_SEED = 32


def golden_heatmaps(images):
    """{"unit": (N, 32, 32) in [0, 1], "signed": 2 · unit − 0.7} float32,
    tie-free per map."""
    rng = np.random.default_rng(HEATMAP_SEED)
    maps = images.mean(-1) + 0.5 * rng.uniform(0.0, 1.0, images.shape[:3])
    low, high = maps.min((1, 2), keepdims=True), maps.max((1, 2), keepdims=True)
    unit = ((maps - low) / (high - low)).astype(np.float32)
    signed = (2.0 * unit - 0.7).astype(np.float32)
    for heatmap in (*unit, *signed):
        assert len(np.unique(heatmap)) == heatmap.size, "tied heatmap values"
    return {"unit": unit, "signed": signed}


# ------------------------------------------------------ pytorch-grad-cam

def gradcam_part(out):
    import torch
    import golden_torch_net
    golden_torch_net.install_torchvision_stand_in()
    import pytorch_grad_cam
    from pytorch_grad_cam.metrics.cam_mult_image import DropInConfidence, IncreaseInConfidence
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    class SimilarityToConceptTarget:
        """pytorch-grad-cam's embedding tutorial target: cos(output, concept)."""

        def __init__(self, features):
            self.features = features

        def __call__(self, model_output):
            return torch.nn.CosineSimilarity(dim=0)(model_output, self.features)

    class Recording:
        def __init__(self, target, log):
            self.target, self.log = target, log

        def __call__(self, output):
            score = self.target(output)
            self.log.append(float(score))
            return score

    weights = golden_net.make_weights()
    images = golden_net.sample_images(seed=1)
    x = golden_torch_net.to_nchw(images)
    nets = {kind: golden_torch_net.torch_model(weights, kind)
            for kind in ("classifier", "embedding")}
    with torch.no_grad():
        logits = nets["classifier"](x)
        embeddings = nets["embedding"](x)
    top1 = logits.argmax(1).numpy()
    targets = {"top1": ("classifier", [ClassifierOutputSoftmaxTarget(int(c)) for c in top1]),
               "class": ("classifier", [ClassifierOutputSoftmaxTarget(c) for c in range(4)]),
               "similarity": ("embedding", [SimilarityToConceptTarget(e) for e in embeddings])}
    arrays, meta = {"gradcam.top1_ids": top1}, []
    for heat_name, heatmaps in golden_heatmaps(images).items():
        if heat_name != "unit":
            continue  # cam ⊙ image: maps in [0, 1] as the library expects
        for cls in (DropInConfidence, IncreaseInConfidence):
            for target_name, (network, target_list) in targets.items():
                name = f"gradcam.{cls.__name__}.{target_name}.{heat_name}"
                log = []
                wrapped = [Recording(t, log) for t in target_list]
                result = cls()(x, heatmaps, wrapped, nets[network])
                arrays[f"{name}.result"] = np.asarray(result, np.float32).reshape(-1)
                arrays[f"{name}.before"] = np.float32(log[:len(images)])
                arrays[f"{name}.after"] = np.float32(log[len(images):])
                meta.append(dict(name=name, metric=cls.__name__, library="pytorch-grad-cam",
                                 network=network, target=target_name, heatmaps=heat_name,
                                 settings={}))
    arrays["gradcam.meta"] = np.array(json.dumps(meta))
    arrays["gradcam.versions"] = np.array(json.dumps({
        "torch": torch.__version__,
        "grad-cam": getattr(pytorch_grad_cam, "__version__", "1.5.7")}))
    np.savez_compressed(out, **arrays)
    print(f"wrote {out}")


# ------------------------------------------------------------- xplique

def _cosine_operator():
    import tensorflow as tf

    @tf.function
    def cosine_similarity_operator(model, inputs, targets):
        """(N,) cosine similarity of model(inputs) (N, D) to targets (N, D)."""
        embeddings = model(inputs)
        dots = tf.reduce_sum(embeddings * targets, axis=-1)
        norms = tf.norm(embeddings, axis=-1) * tf.norm(targets, axis=-1)
        return dots / tf.maximum(norms, 1e-8)
    return cosine_similarity_operator


def _record_inference(metric):
    """Wraps metric.batch_inference_function; returns the list it fills."""
    seen, inner = [], metric.batch_inference_function

    def recording(model, inputs, targets, batch_size=None):
        scores = inner(model, inputs, targets, batch_size)
        seen.append(np.asarray(scores))
        return scores

    metric.batch_inference_function = recording
    return seen


class MuFidelityCapture:
    """Runs xplique's own `_perturb_samples` and reads the random grid back
    from its masks; wraps spearmanr to keep each image's two series."""

    def __init__(self, fidelity_module):
        self.module = fidelity_module
        self.original = fidelity_module.MuFidelity._perturb_samples
        self.original_spearmanr = fidelity_module.spearmanr
        self.grids, self.series = [], []

    def start_case(self):
        self.grids, self.series = [], []

    def install(self):
        import tensorflow as tf
        capture = self

        def perturb(metric, inputs, nb_perturbations):
            degraded, masks = capture.original.__get__(metric, type(metric))(
                inputs, nb_perturbations)
            g = metric.grid_size
            cells = tf.image.resize(tf.reshape(tf.range(g * g, dtype=tf.float32), (1, g, g, 1)),
                                    metric.inputs.shape[1:-1], method="nearest")
            cells = cells.numpy()[0, ..., 0].astype(np.int64)
            assert len(np.unique(cells)) == g * g, "a grid cell covers no pixel"
            kept = masks.numpy()[0, ..., 0]                     # (nb, H, W) of image 0
            grid = np.zeros((nb_perturbations, g * g), np.float32)
            grid[:, cells.reshape(-1)] = kept.reshape(nb_perturbations, -1)
            assert np.array_equal(grid[:, cells], kept), "mask is not the grid upsampled"
            assert (masks.numpy() == masks.numpy()[:1]).all()   # one grid for the batch
            capture.grids.append((inputs.shape[0], grid.reshape(-1, g, g) == 0.0))
            return degraded, masks

        def spearmanr(a, b):
            result = capture.original_spearmanr(a, b)
            capture.series.append((np.asarray(a), np.asarray(b), float(result[0])))
            return result

        self.module.MuFidelity._perturb_samples = perturb
        self.module.spearmanr = spearmanr


def _subsets_per_image(grids, count, nb_samples):
    """(count, nb_samples, g, g) from the captured (batch_len, grid) chunks
    (xplique walks images in batches, each batch's perturbations in
    chunks; every image of a batch shares the chunk's grid)."""
    per_image, chunks = [], list(grids)
    while len(per_image) < count:
        batch_len, taken = chunks[0][0], []
        while sum(len(g) for g in taken) < nb_samples:
            taken.append(chunks.pop(0)[1])
        per_image += [np.concatenate(taken)] * batch_len
    return np.stack(per_image)


def xplique_part(out, gradcam_npz):
    import tensorflow as tf
    import keras
    import scipy
    import xplique
    from xplique.metrics import (AverageDropMetric, AverageIncreaseMetric, Deletion, Insertion,
                                 MuFidelity)
    from xplique.metrics import fidelity as fidelity_module

    tf.config.set_visible_devices([], "GPU")
    run = golden_net.reference_run()
    models, images = run["models"], run["images"]
    top1, embeddings = run["top1"], run["embeddings"]
    heatmaps = golden_heatmaps(images)
    cosine = _cosine_operator()
    targets = {
        "top1": ("classifier", np.eye(5, dtype=np.float32)[top1], None),
        "class": ("classifier", np.eye(5, dtype=np.float32)[np.arange(4)], None),
        "similarity": ("embedding", embeddings, cosine),
    }
    arrays = {"images": images, "classifier.logits": run["logits"],
              "embedding.embeddings": embeddings, "target_ids.top1": top1.astype(np.int64),
              "target_ids.class": np.arange(4, dtype=np.int64)}
    arrays.update({f"heatmaps.{k}": v for k, v in heatmaps.items()})
    for name, (_, target, _) in targets.items():
        arrays[f"targets.{name}"] = target
    meta = []

    def common(target_name):
        network, target, operator = targets[target_name]
        kwargs = dict(activation=None if operator else "softmax", operator=operator)
        return models[network], target, network, kwargs

    causal = [
        (Deletion, "top1", "unit", dict(steps=10, baseline_mode=0.0)),
        (Deletion, "class", "unit", dict(steps=-1, max_percentage_perturbed=0.5,
                                         baseline_mode=0.5)),
        (Deletion, "similarity", "unit", dict(steps=10, baseline_mode=0.0)),
        (Insertion, "top1", "unit", dict(steps=10, baseline_mode=0.0)),
        (Insertion, "top1", "signed", dict(steps=6, max_percentage_perturbed=0.8,
                                           baseline_mode=0.5, batch_size=3)),
        (Insertion, "similarity", "unit", dict(steps=10, baseline_mode=0.0)),
    ]
    for index, (cls, target_name, heat_name, settings) in enumerate(causal):
        model, target, network, kwargs = common(target_name)
        name = f"{cls.__name__}.{index}.{target_name}.{heat_name}"
        metric = cls(model, images, target, **settings, **kwargs)
        seen = _record_inference(metric)
        arrays[f"{name}.auc"] = np.float64(metric.evaluate(heatmaps[heat_name]))
        arrays[f"{name}.curves"] = np.stack(seen, axis=1)
        seen.clear()
        mean_curve = metric.detailed_evaluate(heatmaps[heat_name])
        arrays[f"{name}.mean_curve"] = np.array(list(mean_curve.values()), np.float64)
        arrays[f"{name}.counts"] = np.array(list(mean_curve.keys()), np.int64)
        meta.append(dict(name=name, metric=cls.__name__, library="xplique", network=network,
                         target=target_name, heatmaps=heat_name, settings=settings))

    average = [(cls, target_name, heat_name, settings)
               for cls in (AverageDropMetric, AverageIncreaseMetric)
               for target_name, heat_name, settings in (
                   ("top1", "unit", {}), ("class", "unit", {}),
                   ("class", "signed", dict(batch_size=3)), ("similarity", "signed", {}))]
    for cls, target_name, heat_name, settings in average:
        model, target, network, kwargs = common(target_name)
        name = f"{cls.__name__}.{target_name}.{heat_name}"
        metric = cls(model, images, target, **settings, **kwargs)
        arrays[f"{name}.score"] = np.float64(metric.evaluate(heatmaps[heat_name]))
        seen = _record_inference(metric)
        arrays[f"{name}.per_image"] = metric.detailed_evaluate(
            tf.constant(images), tf.constant(target), tf.constant(heatmaps[heat_name]))
        arrays[f"{name}.base"], arrays[f"{name}.after"] = seen
        meta.append(dict(name=name, metric=cls.__name__, library="xplique", network=network,
                         target=target_name, heatmaps=heat_name, settings=settings))

    capture = MuFidelityCapture(fidelity_module)
    capture.install()
    fidelity_cases = [
        ("top1", "unit", dict()),
        ("top1", "signed", dict(grid_size=8, subset_percent=0.3, nb_samples=50,
                                baseline_mode=0.5, batch_size=16)),
        ("similarity", "unit", dict(nb_samples=100, batch_size=256)),
    ]
    for index, (target_name, heat_name, settings) in enumerate(fidelity_cases):
        model, target, network, kwargs = common(target_name)
        name = f"MuFidelity.{index}.{target_name}.{heat_name}"
        tf.random.set_seed(MUFIDELITY_SEED)
        capture.start_case()
        metric = MuFidelity(model, images, target, **settings, **kwargs)
        arrays[f"{name}.score"] = np.float64(metric.evaluate(heatmaps[heat_name]))
        arrays[f"{name}.subsets"] = _subsets_per_image(capture.grids, len(images),
                                                       metric.nb_samples)
        arrays[f"{name}.drops"] = np.stack([a for a, _, _ in capture.series])
        arrays[f"{name}.attributions"] = np.stack([b for _, b, _ in capture.series])
        arrays[f"{name}.correlations"] = np.array([c for _, _, c in capture.series])
        full = dict(grid_size=metric.grid_size, subset_percent=metric.subset_percent,
                    nb_samples=metric.nb_samples, baseline_mode=metric.baseline_mode,
                    batch_size=metric.batch_size)
        meta.append(dict(name=name, metric="MuFidelity", library="xplique", network=network,
                         target=target_name, heatmaps=heat_name, settings=full))

    versions = {"xplique": xplique.__version__, "tensorflow": tf.__version__,
                "keras": keras.__version__, "numpy": np.__version__, "scipy": scipy.__version__}
    if gradcam_npz:
        with np.load(gradcam_npz) as gradcam:
            meta += json.loads(str(gradcam["gradcam.meta"]))
            versions.update(json.loads(str(gradcam["gradcam.versions"])))
            assert np.array_equal(gradcam["gradcam.top1_ids"], top1)
            arrays.update({k: gradcam[k] for k in gradcam.files
                           if k not in ("gradcam.meta", "gradcam.versions")})
    info = dict(versions=versions, heatmap_seed=HEATMAP_SEED, mufidelity_seed=MUFIDELITY_SEED)
    size = golden_net.save(out, meta, info, arrays)
    print(f"wrote {out} ({size:.0f} KiB, {len(meta)} cases)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("xplique", "gradcam"), default="xplique")
    parser.add_argument("--gradcam-npz", type=pathlib.Path, default=None,
                        help="the gradcam part's output, merged into the golden file")
    parser.add_argument("--out", type=pathlib.Path, default=None)
    args = parser.parse_args()
    if args.part == "gradcam":
        gradcam_part(args.out or pathlib.Path("gradcam_metrics.npz"))
    else:
        xplique_part(args.out or DEFAULT_OUT, args.gradcam_npz)


if __name__ == "__main__":
    main()
