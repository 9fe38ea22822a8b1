"""Writes the PyTorch reference golden files for the attribution methods of
issue 22, from the reference libraries themselves, on golden_net's networks:

    tests/data/golden/pytorch_grad_cam.npz   grad-cam (pytorch-grad-cam)
    tests/data/golden/rise.npz               eclique/RISE explanations.py, evaluation.py
    tests/data/golden/captum.npz             captum IntegratedGradients, Saliency,
                                             NoiseTunnel(Saliency)

Runs in the side virtualenv made by tools/make_torch_golden.sh (CPU torch),
never in the project's. The networks are tools/golden_torch_net.py, the port
of tools/golden_net.py; tests/test_golden_torch.py checks, without torch,
that Keras reproduces the logits/embeddings stored here.

File layout (each file): `meta` is a JSON list of case descriptions (name,
method, net, targets, the library's settings under the library's own names,
and `fields`: the arrays of the case, stored as `<name>.<field>`); `info` is
a JSON dict (library versions, commit, notes). Arrays shared by all cases
have no case prefix: `images` (4, 32, 32, 3) NHWC = golden_net.sample_images(),
`logits` (4, 5), `embeddings` (4, 8) and, in pytorch_grad_cam.npz,
`references.images` = sample_images(seed=2), `references.embeddings` (4, 8).
Layouts are the library's: NCHW (B, C, H, W) unless a name ends in `_nhwc`.

How the internals were captured (no library code is copied or changed):

pytorch-grad-cam: the CAM object's bound `get_cam_weights` and
`get_cam_image` are wrapped on the instance (the library calls them through
`self`), so one `__call__` records the activations and gradients it received
(`activations`, `<net>.<targets>.gradients`: the same for every method, stored
once and asserted equal), the channel weights (`weights` (B, 16)) and the raw
map `cam_raw` (B, 16, 16) = get_cam_image's output: feature-map resolution,
*before* the ReLU (np.maximum(cam, 0)) and scale_cam_image that
compute_cam_per_layer applies. `cam` (B, 32, 32) is `__call__`'s return:
relu -> per-image min-max (x - min) / (1e-7 + max) -> cv2.resize
INTER_LINEAR to 32x32 -> min-max again (aggregate_multi_layers). Targets are
wrapped in a recorder that forwards to them unchanged and logs every score
they return: that gives ScoreCAM's per-channel masked-input scores `scores`
(B, 16) (the softmax input) and AblationCAM's `original_scores` (B,) and
`ablated_scores` (B, 16). Top-1 cases pass targets=None (the library's
argmax), so their scores are not logged.

RISE: explanations.py and evaluation.py are read from the fetched repository
(git show <commit>:file) into a temporary folder and imported from there;
`.cuda()` is made the identity (CPU only). np.random.rand and
np.random.randint are wrapped during generate_masks to record the grid and
shifts it drew; `self.masks` (N, 1, 32, 32) float32 is stored as the masks.
evaluation.py's `from utils import *` is served by a stand-in `utils`
(np, torch, plt only: utils.py loads torchvision/ImageNet helpers the metric
does not use) and its module constants HW = 224*224, n_classes = 1000 are
set to 32*32 and 5 for these images.

captum: torch.normal is wrapped during NoiseTunnel.attribute to record the
noise it drew (`noise` (B*nt_samples, 3, 32, 32), repeat_interleave order:
row b*nt_samples + s is sample s of image b); IntegratedGradients' alphas and
step sizes come from captum's own approximation_parameters.
"""

import argparse
import contextlib
import pathlib
import subprocess
import sys
import tempfile
import types

import numpy as np
import torch

TOOLS = pathlib.Path(__file__).resolve().parent
REPO = TOOLS.parent
sys.path.insert(0, str(TOOLS))
import golden_net  # noqa: E402
import golden_torch_net  # noqa: E402

OUT_DIR = REPO / "tests" / "data" / "golden"
RISE_COMMIT = "d91ea006d4bb9b7990347fe97086bdc0f5c1fe10"
IDS = [0, 1, 2, 3]  # one class id per sample image


def _version(package):
    from importlib import metadata
    return metadata.version(package)


def _save(path, meta, info, arrays):
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    for key, value in arrays.items():
        if value.dtype == np.float64:
            raise AssertionError(f"{key} is float64; store what the library used")
    size = golden_net.save(path, meta, info, arrays)
    print(f"wrote {len(meta)} cases, {len(arrays)} arrays to {path} ({size:.0f} KiB)")


def _common(weights):
    images = golden_net.sample_images()
    x = golden_torch_net.to_nchw(images)
    with torch.no_grad():
        logits = golden_torch_net.torch_model(weights, "classifier")(x).numpy()
        embeddings = golden_torch_net.torch_model(weights, "embedding")(x).numpy()
    return images, x, logits, embeddings


# --------------------------------------------------------------- grad-cam

class SimilarityToConceptTarget:
    """pytorch-grad-cam's tutorial target "Pixel Attribution for embeddings"
    (tutorials/Pixel Attribution for embeddings.ipynb), as written there:
    the cosine similarity of one image's output (D,) to a reference (D,)."""

    def __init__(self, features):
        self.features = features

    def __call__(self, model_output):
        cos = torch.nn.CosineSimilarity(dim=0)
        return cos(model_output, self.features)


class RecordingTarget:
    """Forwards to `target` unchanged and logs each score it returns."""

    def __init__(self, target):
        self.target = target
        self.log = []

    def __call__(self, model_output):
        score = self.target(model_output)
        self.log.append(float(score.detach().cpu().item()))
        return score


def _record_internals(cam):
    """Wraps the instance's get_cam_weights / get_cam_image; returns the
    dict they fill during one __call__."""
    record = {}
    get_cam_image, get_cam_weights = cam.get_cam_image, cam.get_cam_weights

    def cam_image(input_tensor, target_layer, targets, activations, grads,
                  eigen_smooth=False):
        record["activations"] = np.array(activations, np.float32, copy=True)
        if grads is not None:
            record["gradients"] = np.array(grads, np.float32, copy=True)
        out = get_cam_image(input_tensor, target_layer, targets, activations,
                            grads, eigen_smooth)
        record["cam_raw"] = np.array(out, np.float32, copy=True)
        return out

    def cam_weights(*args):
        weights = get_cam_weights(*args)
        record["weights"] = np.array(weights, np.float32, copy=True)
        return weights

    cam.get_cam_image = cam_image
    cam.get_cam_weights = cam_weights
    return record


def make_pytorch_grad_cam(weights, out):
    golden_torch_net.install_torchvision_stand_in()
    import pytorch_grad_cam as pgc
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    images, x, logits, embeddings = _common(weights)
    references = golden_net.sample_images(seed=2)
    nets = {kind: golden_torch_net.torch_model(weights, kind)
            for kind in ("classifier", "embedding")}
    with torch.no_grad():
        ref_emb = nets["embedding"](golden_torch_net.to_nchw(references))
    arrays = {"images": images, "logits": logits, "embeddings": embeddings,
              "references.images": references,
              "references.embeddings": ref_emb.numpy()}
    target_sets = {
        ("classifier", "ids"): lambda: [ClassifierOutputTarget(c) for c in IDS],
        ("classifier", "top1"): lambda: None,
        ("embedding", "similarity"): lambda: [
            SimilarityToConceptTarget(ref_emb[i]) for i in range(len(images))],
    }
    methods = {
        "GradCAM": (pgc.GradCAM, {}),
        "GradCAMPlusPlus": (pgc.GradCAMPlusPlus, {}),
        "XGradCAM": (pgc.XGradCAM, {}),
        "HiResCAM": (pgc.HiResCAM, {}),
        "LayerCAM": (pgc.LayerCAM, {}),
        "EigenCAM": (pgc.EigenCAM, {}),
        # ScoreCAM takes no batch_size argument: it uses self.batch_size
        # when set, else 16 (score_cam.py); the default is recorded.
        "ScoreCAM": (pgc.ScoreCAM, {}),
        "AblationCAM": (pgc.AblationCAM, {"batch_size": 32,
                                          "ratio_channels_to_ablate": 1.0}),
    }
    settings_of = {
        "ScoreCAM": {"batch_size": 16, "mask_upsampling":
                     "torch.nn.UpsamplingBilinear2d (align_corners=True) to the "
                     "input size, per-channel min-max with +1e-8",
                     "weights": "softmax over channels of the masked-input scores"},
        "AblationCAM": {"batch_size": 32, "ratio_channels_to_ablate": 1.0,
                        "ablation_layer": "AblationLayer",
                        "weights": "(original_score - ablated_score) / original_score"},
    }
    shared = {}
    meta = []
    for (net, target_name), make_targets in target_sets.items():
        for method, (cls, kwargs) in methods.items():
            if method == "EigenCAM" and target_name != "ids" and net == "classifier":
                continue  # EigenCAM ignores targets: one case per net
            model = nets[net]
            name = f"{method}.{net}.{target_name if method != 'EigenCAM' else 'none'}"
            targets = make_targets()
            if targets is not None:
                targets = [RecordingTarget(t) for t in targets]
            cam = cls(model=model, target_layers=[model.features_relu], **kwargs)
            record = _record_internals(cam)
            result = cam(input_tensor=x.clone(),
                         targets=None if method == "EigenCAM" else targets)
            cam.activations_and_grads.release()
            case = {"name": name, "method": method, "net": net,
                    "targets": ("none" if method == "EigenCAM" else target_name),
                    "target_layer": "features_relu (Keras 'features')",
                    "settings": {"aug_smooth": False, "eigen_smooth": False,
                                 **settings_of.get(method, {})}}
            if targets is not None and method != "EigenCAM":
                case["target_ids" if net == "classifier" else "reference_index"] = (
                    IDS if net == "classifier" else list(range(len(images))))
            if target_name == "top1":
                case["target_ids"] = [int(i) for i in np.argmax(logits, axis=1)]
            fields = {"cam_raw": record["cam_raw"], "cam": np.asarray(result, np.float32)}
            if "weights" in record:
                fields["weights"] = record["weights"]
            if method == "ScoreCAM" and targets is not None:
                fields["scores"] = np.float32([t.log for t in targets])
            if method == "AblationCAM":
                if targets is not None:
                    logs = np.float32([t.log for t in targets])  # [orig, 16 ablated]
                    fields["original_scores"] = logs[:, 0]
                    fields["ablated_scores"] = logs[:, 1:]
                # AblationLayer zeroes a channel when the batch minimum is 0
                # (ReLU output), else sets it to min - 1e7.
                assert np.all(record["activations"].min(axis=(1, 2, 3)) == 0)
                case["settings"]["ablation_value"] = 0.0
            # Activations and gradients are the same whatever the method.
            for key, value in (("activations", record["activations"]),
                               (f"{net}.{target_name}.gradients", record.get("gradients"))):
                if value is None:
                    continue
                if key in shared:
                    np.testing.assert_array_equal(shared[key], value, err_msg=name)
                else:
                    shared[key] = value
            for field, value in fields.items():
                arrays[f"{name}.{field}"] = value
            case["fields"] = sorted(fields)
            meta.append(case)
    arrays.update(shared)
    info = {"library": "pytorch-grad-cam (PyPI grad-cam)",
            "versions": {"grad-cam": _version("grad-cam"), "torch": torch.__version__,
                         "numpy": np.__version__,
                         "opencv-python-headless": _version("opencv-python-headless")},
            "shared": {"activations": "(4, 16, 16, 16) NCHW output of features_relu; "
                                      "identical for both nets (same trunk weights)",
                       "<net>.<targets>.gradients": "(4, 16, 16, 16) NCHW d(sum of "
                                      "target scores)/d(activations)"},
            "notes": ["cam_raw is get_cam_image's output before ReLU and scaling",
                      "cam is __call__'s output: relu, min-max (1e-7), cv2.resize "
                      "INTER_LINEAR to 32x32, min-max again",
                      "EigenCAM: first right singular vector of the centred (HW, K) "
                      "activations from np.linalg.svd, no sign fix",
                      "torchvision replaced by an import-only stand-in"]}
    _save(out / "pytorch_grad_cam.npz", meta, info, arrays)


# ------------------------------------------------------------------ RISE

def _rise_modules(git_dir, workdir):
    """explanations, evaluation imported from `git show` copies in workdir."""
    for name in ("explanations.py", "evaluation.py"):
        text = subprocess.run(
            ["git", f"--git-dir={git_dir}", "show", f"{RISE_COMMIT}:{name}"],
            check=True, capture_output=True, text=True).stdout
        (workdir / name).write_text(text)
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    utils = types.ModuleType("utils")  # evaluation.py: `from utils import *`
    utils.np, utils.torch, utils.plt = np, torch, plt
    sys.modules["utils"] = utils
    sys.path.insert(0, str(workdir))
    import explanations
    import evaluation
    return explanations, evaluation


@contextlib.contextmanager
def _recording(module, name, log):
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        value = original(*args, **kwargs)
        log.append(value)
        return value
    setattr(module, name, wrapper)
    try:
        yield
    finally:
        setattr(module, name, original)


def make_rise(weights, out, git_dir):
    torch.Tensor.cuda = lambda self, *args, **kwargs: self  # CPU only
    images, x, logits, embeddings = _common(weights)
    N, s, p1, gpu_batch, step = 200, 8, 0.5, 100, 32
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        explanations, evaluation = _rise_modules(git_dir, tmp)
        classifier = golden_torch_net.torch_model(weights, "classifier")
        softmaxed = torch.nn.Sequential(classifier, torch.nn.Softmax(dim=1)).eval()
        for p in classifier.parameters():  # as the notebooks do
            p.requires_grad = False
        np.random.seed(0)
        rand_log, randint_log = [], []
        explainer = explanations.RISE(classifier, (32, 32), gpu_batch=gpu_batch)
        with _recording(np.random, "rand", rand_log), \
                _recording(np.random, "randint", randint_log):
            explainer.generate_masks(N=N, s=s, p1=p1, savepath=str(tmp / "masks.npy"))
        masks = explainer.masks.numpy()
        grid = rand_log[0] < p1
        shifts = np.int32(randint_log).reshape(N, 2)  # (x, y) per mask
        arrays = {"images": images, "logits": logits, "masks": masks,
                  "grid": grid.astype(np.uint8), "grid_uniform": rand_log[0].astype(np.float32),
                  "shifts": shifts}
        meta = []
        settings = {"N": N, "s": s, "p1": p1, "gpu_batch": gpu_batch,
                    "input_size": [32, 32], "np.random.seed": 0}
        for model_name, model in (("logits", classifier), ("softmax", softmaxed)):
            explainer.model = model
            sal = np.stack([explainer(x[i:i + 1]).numpy() for i in range(len(x))])
            name = f"RISE.classifier.{model_name}"
            arrays[f"{name}.saliency"] = sal.astype(np.float32)
            meta.append({"name": name, "method": "RISE", "net": "classifier",
                         "model_output": model_name, "settings": settings,
                         "call": "RISE(model, (32, 32), gpu_batch)(x[i:i+1]) per image "
                                 "-> (CL, H, W), stacked over images",
                         "formula": "masks^T p / N / p1", "fields": ["saliency"]})
            batch = explanations.RISEBatch(model, (32, 32), gpu_batch=gpu_batch)
            batch.load_masks(str(tmp / "masks.npy"))  # the same masks
            np.testing.assert_array_equal(batch.masks.numpy(), masks)
            name = f"RISEBatch.classifier.{model_name}"
            arrays[f"{name}.saliency"] = batch(x).numpy().astype(np.float32)
            meta.append({"name": name, "method": "RISEBatch", "net": "classifier",
                         "model_output": model_name, "settings": settings,
                         "call": "RISEBatch(model, (32, 32), gpu_batch)(x) -> (B, CL, H, W)",
                         "formula": "masks^T p (no / N / p1, unlike RISE)",
                         "fields": ["saliency"]})
        # Deletion / insertion as the Evaluation notebook sets them up:
        # deletion to zeros, insertion from gkern(11, 5)-blurred, one row
        # (32 pixels, as 224 of 224x224) per step, on the softmax model.
        evaluation.HW = 32 * 32
        evaluation.n_classes = golden_net.NUM_CLASSES
        klen, ksig = 11, 5
        kern = evaluation.gkern(klen, ksig)
        blur = lambda t: torch.nn.functional.conv2d(t, kern, padding=klen // 2)  # noqa: E731
        arrays["causal.kernel"] = kern.numpy()
        arrays["causal.blurred_nchw"] = blur(x).numpy()
        top1 = np.argmax(logits, axis=1)
        for model_name, model in (("softmax", softmaxed), ("logits", classifier)):
            sal = arrays[f"RISE.classifier.{model_name}.saliency"]
            explanation = sal[np.arange(len(x)), top1]  # (B, 32, 32)
            for mode, substrate in (("del", torch.zeros_like), ("ins", blur)):
                metric = evaluation.CausalMetric(model, mode, step, substrate)
                curves = np.stack([metric.single_run(x[i:i + 1].clone(), explanation[i])
                                   for i in range(len(x))])
                name = f"CausalMetric.{mode}.{model_name}"
                arrays[f"{name}.explanation"] = explanation.astype(np.float32)
                arrays[f"{name}.scores"] = curves.astype(np.float32)
                arrays[f"{name}.auc"] = np.float32([evaluation.auc(c) for c in curves])
                meta.append({"name": name, "method": "CausalMetric", "mode": mode,
                             "net": "classifier", "model_output": model_name,
                             "settings": {"step": step, "substrate_fn":
                                          "torch.zeros_like" if mode == "del" else
                                          "conv2d(x, gkern(11, 5), padding=5)",
                                          "HW": 32 * 32},
                             "explanation": f"RISE.classifier.{model_name} saliency of "
                                            "the top-1 class",
                             "target_ids": [int(c) for c in top1],
                             "call": "single_run(x[i:i+1], explanation[i]) per image",
                             "fields": ["auc", "explanation", "scores"]})
    info = {"library": "eclique/RISE", "commit": RISE_COMMIT,
            "versions": {"torch": torch.__version__, "numpy": np.__version__,
                         "scikit-image": _version("scikit-image"),
                         "scipy": _version("scipy")},
            "shared": {"masks": "(N, 1, 32, 32) float32: RISE.masks as used",
                       "grid": "(N, s, s) uint8: np.random.rand(N, s, s) < p1",
                       "grid_uniform": "(N, s, s) the uniform draws (float64 -> float32)",
                       "shifts": "(N, 2) int32: (x, y) = np.random.randint(0, cell) "
                                 "twice per mask; mask = resize(grid, (s+1)*cell, "
                                 "order=1, mode='reflect', anti_aliasing=False)"
                                 "[x:x+32, y:y+32], cell = ceil(32/s)",
                       "causal.kernel": "(3, 3, 11, 11) gkern(11, 5): a delta smoothed by "
                                        "scipy gaussian_filter (mode reflect) on an 11x11 grid",
                       "causal.blurred_nchw": "(4, 3, 32, 32) the insertion substrate"},
            "notes": ["RISE divides by N * p1; RISEBatch does not",
                      "the model outputs are used as given (the notebooks wrap "
                      "the network in Softmax: the 'softmax' cases)",
                      "CausalMetric scores: n_steps + 1 = 33 values; auc = "
                      "(sum - first/2 - last/2) / (len - 1)"]}
    _save(out / "rise.npz", meta, info, arrays)


# ---------------------------------------------------------------- captum

def make_captum(weights, out):
    import captum
    from captum.attr import IntegratedGradients, NoiseTunnel, Saliency
    from captum.attr._utils.approximation_methods import approximation_parameters

    images, x, logits, embeddings = _common(weights)
    model = golden_torch_net.torch_model(weights, "classifier")
    with torch.no_grad():
        baseline_logits = model(torch.zeros_like(x)).numpy()
    arrays = {"images": images, "logits": logits, "baseline_logits": baseline_logits}
    meta = []
    top1 = [int(c) for c in np.argmax(logits, axis=1)]

    def put(name, case, fields):
        for field, value in fields.items():
            arrays[f"{name}.{field}"] = value
        meta.append({"name": name, **case, "fields": sorted(fields)})

    ig = IntegratedGradients(model)
    for method in ("gausslegendre", "riemann_trapezoid"):
        steps = 50
        step_sizes, alphas = approximation_parameters(method)
        for target_name, target in (("ids", IDS), ("top1", top1)):
            attr, delta = ig.attribute(x.clone(), baselines=torch.zeros_like(x),
                                       target=target, n_steps=steps, method=method,
                                       return_convergence_delta=True)
            attr = attr.detach().numpy()
            put(f"IntegratedGradients.{method}.{target_name}",
                {"method": "IntegratedGradients", "net": "classifier",
                 "targets": target_name, "target_ids": list(target),
                 "settings": {"n_steps": steps, "method": method, "baselines": 0.0,
                              "internal_batch_size": None, "multiply_by_inputs": True}},
                {"attributions": attr, "attributions_nhwc": golden_torch_net.to_nhwc(attr),
                 "delta": delta.detach().numpy().astype(np.float32),
                 "alphas": np.float32(alphas(steps)),
                 "step_sizes": np.float32(step_sizes(steps))})
    saliency = Saliency(model)
    for target_name, target in (("ids", IDS), ("top1", top1)):
        attr = saliency.attribute(x.clone(), target=target).detach().numpy()
        put(f"Saliency.{target_name}",
            {"method": "Saliency", "net": "classifier", "targets": target_name,
             "target_ids": list(target), "settings": {"abs": True}},
            {"attributions": attr, "attributions_nhwc": golden_torch_net.to_nhwc(attr)})
    nt_samples, stdevs = 5, 1.0  # NoiseTunnel.attribute's defaults
    torch.manual_seed(0)
    for target_name, target in (("ids", IDS), ("top1", top1)):
        noise_log = []
        with _recording(torch, "normal", noise_log):
            attr = NoiseTunnel(saliency).attribute(
                x.clone(), nt_type="smoothgrad", nt_samples=nt_samples,
                stdevs=stdevs, target=target).detach().numpy()
        assert len(noise_log) == 1, len(noise_log)  # one partition: all samples
        put(f"NoiseTunnel.Saliency.{target_name}",
            {"method": "NoiseTunnel(Saliency)", "net": "classifier",
             "targets": target_name, "target_ids": list(target),
             "settings": {"nt_type": "smoothgrad", "nt_samples": nt_samples,
                          "stdevs": stdevs, "nt_samples_batch_size": None,
                          "draw_baseline_from_distrib": False, "abs": True,
                          "torch.manual_seed": 0}},
            {"attributions": attr, "attributions_nhwc": golden_torch_net.to_nhwc(attr),
             "noise": noise_log[0].numpy().astype(np.float32)})
    info = {"library": "captum", "versions": {"captum": captum.__version__,
                                              "torch": torch.__version__,
                                              "numpy": np.__version__},
            "notes": ["IntegratedGradients: attributions = (x - 0) * sum_i "
                      "step_sizes[i] * grad(alphas[i] * x); delta = sum(attr) - "
                      "(f(x) - f(0))",
                      "Saliency: |d logit_target / d x| (abs=True)",
                      "NoiseTunnel smoothgrad: mean over samples of Saliency at "
                      "x.repeat_interleave(n) + noise"]}
    _save(out / "captum.npz", meta, info, arrays)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=pathlib.Path, default=OUT_DIR)
    parser.add_argument("--only", choices=("pytorch_grad_cam", "rise", "captum"),
                        action="append", help="libraries to run (default all)")
    parser.add_argument("--rise-git-dir", type=pathlib.Path,
                        help="git directory of github.com/eclique/RISE (needed for rise)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # the same summation order on any machine
    torch.use_deterministic_algorithms(True)
    weights = golden_net.make_weights()
    only = args.only or ["pytorch_grad_cam", "rise", "captum"]
    if "pytorch_grad_cam" in only:
        make_pytorch_grad_cam(weights, args.out)
    if "captum" in only:
        make_captum(weights, args.out)
    if "rise" in only:
        if args.rise_git_dir is None:
            print("rise: skipped, no --rise-git-dir (fetch github:eclique/RISE)")
            return 1 if args.only else 0
        make_rise(weights, args.out, args.rise_git_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
