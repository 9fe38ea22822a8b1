"""Every method of `tfcaf.caf.METHODS` against the reference libraries,
timed side by side in one process (issue 22 §3): ms/img and × the forward
pass, next to tf-keras-vis 0.8.7 and xplique 2.0.2 run with the same
settings.

    .venv-xplique/bin/python bench/methods_speed.py [--cases resnet50,digits_adl]
        [--methods gradcam,...] [--batch 16] [--size 224] [--many_pass_size 112]
        [--many_pass_images N] [--repeats 2] [--image_seed 0] [--quick]

(`make bench-methods`.) The peers run where they are importable (the side
venv of tools/make_xplique_golden.sh, with `pip install -e . --no-deps`);
where one is not (the project's .venv) a line says so and its columns stay
empty.

Networks (weights do not change the cost, so neither is trained):
- resnet50: keras.applications.ResNet50(weights=None, seeded,
  classifier_activation=None: every library explains the same logits) at
  conv5_block3_out, --batch images of --size px; methods that run the
  model many times per image (`Method.many_passes`) at --many_pass_size px
  on the images each row says (`MANY_PASS`; --many_pass_images overrides):
  Score-CAM on 1 image (2,048 passes per image), the others on --batch
  images with fewer steps, samples or masks than their defaults (IG
  steps=16, SmoothGrad nb_samples=16, RISE 64 masks, Occlusion 28 px
  patches: 16 per image), so that every library passes 16 inputs per
  model call and the run stays within 20 minutes on 2 shared cores.
- digits_adl: the digits ADL classifier of flags/digits_adl.flags
  (`build_model("tiny_resnet", "adl")`, 64 px, as bench/faithfulness.py),
  untrained, at tfcaf's default layer (stage3_out_adl, inside the nested
  "backbone"; the peers, which look layers up at the top level, get a
  flat copy of the net with the same weights, `flat_copy`); every method
  on --batch images, at the registry's defaults but RISE (500 masks, not
  4,000) and Occlusion (8 px patches every 4 px, not 3 every 3).
--quick: 4 images, ResNet50 at 64 px, one round, fewer steps (`MANY_PASS`),
for development (about 2 minutes).
Images: seeded uniform in [0, 255] (`--image_seed`). Target: each image's
top-1 class, given explicitly to every library (methods that explain the
output as a whole, l2caf and eigencam, take none).

Peers and their settings (each row's "settings" cell holds the values):
tf-keras-vis `Gradcam`, `GradcamPlusPlus`, `Layercam` and `Scorecam`
(penultimate_layer = the layer, seek_penultimate_conv_layer=False,
`CategoricalScore`, Scorecam's batch_size = tfcaf's × images: the same
inputs per model call), `Saliency` (and, for smoothgrad, `Saliency` with
smooth_samples = nb_samples, smooth_noise = noise / 255: its noise is a
fraction of each image's range, tfcaf's and xplique's are absolute), all
with clone=False; xplique `GradCAM`, `GradCAMPP` (conv_layer = the layer),
`Saliency`, `SmoothGrad`, `IntegratedGradients`, `Occlusion`, `Rise`, all
with batch_size=--batch (inputs per model call) and one-hot targets.
Random draws (noise, masks) are each library's own.

Timing: per row, every contender (the forward pass, tfcaf, each peer) is
called once untimed (tracing and first-call model building are not
timed), then --repeats rounds call each once in turn (the order reversed
every other round), so that all of them see the same load on a shared
machine; each keeps its best round. "× fwd" divides that by the best
forward pass (`Explainer.forward`, compiled) of the same images in the
same rounds; "peer ÷ tfcaf" is the fastest peer's time over tfcaf's (≥ 1:
tfcaf as fast or faster). "r" is the smallest per-image Pearson
correlation of the peer's heatmaps with tfcaf's (same layer and target; a
check that both explain the same thing, not a parity test: random methods
draw other masks and noise, xplique's RISE divides by the masks' sum,
tf-keras-vis's Score-CAM weights by softmax probabilities).
"""

import argparse
import os
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from faithfulness import _timed  # noqa: E402
from tfcaf import graph  # noqa: E402
from tfcaf.caf import METHODS, Explainer  # noqa: E402
from tfcaf.evaluation.seeds import pearson_per_image  # noqa: E402

PEERS = ("tf-keras-vis", "xplique")

# case -> layer explained (None: tfcaf's default)
LAYERS = {"resnet50": "conv5_block3_out", "digits_adl": None}
DIGITS_SIZE = 64

# Rows of many-pass methods: case -> method -> (images, tfcaf options);
# images None: --batch. (full, --quick)
MANY_PASS = {
    "resnet50": {
        "scorecam": ((1, dict(batch_size=16)), (1, dict(batch_size=16))),
        "ablationcam": ((None, dict(batch_size=32)), (None, dict(batch_size=32))),
        "integrated_gradients": ((None, dict(steps=16)), (1, dict(steps=4))),
        "smoothgrad": ((None, dict(nb_samples=16, noise=0.2 * 255)),
                       (1, dict(nb_samples=4, noise=0.2 * 255))),
        "occlusion": ((None, dict(patch_size=28, patch_stride=28)),
                      (1, dict(patch_size=32, patch_stride=32))),
        "rise": ((None, dict(nb_samples=64)), (1, dict(nb_samples=16))),
    },
    "digits_adl": {
        "scorecam": ((None, dict(batch_size=16)), (None, dict(batch_size=16))),
        "ablationcam": ((None, dict(batch_size=32)), (None, dict(batch_size=32))),
        "integrated_gradients": ((None, dict(steps=50)), (None, dict(steps=8))),
        "smoothgrad": ((None, dict(nb_samples=50, noise=0.2 * 255)),
                       (None, dict(nb_samples=8, noise=0.2 * 255))),
        "occlusion": ((None, dict(patch_size=8, patch_stride=4)),
                      (None, dict(patch_size=16, patch_stride=16))),
        "rise": ((None, dict(nb_samples=500)), (None, dict(nb_samples=64))),
    },
}

QUICK = dict(batch=4, size=64, many_pass_size=64, repeats=1)


def load_peers():
    """{peer: module namespace or None}, with a printed line for each
    library that is not importable."""
    peers = {}
    try:
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
        from tf_keras_vis.layercam import Layercam
        from tf_keras_vis.saliency import Saliency
        from tf_keras_vis.scorecam import Scorecam
        from tf_keras_vis.utils.scores import CategoricalScore
        peers["tf-keras-vis"] = dict(Gradcam=Gradcam, GradcamPlusPlus=GradcamPlusPlus,
                                     Layercam=Layercam, Saliency=Saliency, Scorecam=Scorecam,
                                     CategoricalScore=CategoricalScore)
    except ImportError as err:
        print(f"tf-keras-vis skipped: not importable ({err})")
        peers["tf-keras-vis"] = None
    try:
        from xplique import attributions
        peers["xplique"] = attributions
    except ImportError as err:
        print(f"xplique skipped: not importable ({err})")
        peers["xplique"] = None
    return peers


def tf_keras_vis_call(lib, method, model, layer, images, ids, options):
    """A call of tf-keras-vis's counterpart of `method` (None: none), as
    `() -> (B, H, W)` maps."""
    if lib is None or ids is None:
        return None
    score = lib["CategoricalScore"]([int(i) for i in ids])
    cam = dict(penultimate_layer=layer, seek_penultimate_conv_layer=False)
    classes = {"gradcam": "Gradcam", "gradcampp": "GradcamPlusPlus", "layercam": "Layercam",
               "scorecam": "Scorecam", "saliency": "Saliency", "smoothgrad": "Saliency"}
    if method not in classes:
        return None
    visualizer = lib[classes[method]](model, clone=False)
    if method == "scorecam":
        cam.update(batch_size=options["batch_size"] * len(images), max_N=None)
    elif method == "saliency":
        cam = {}
    elif method == "smoothgrad":
        cam = dict(smooth_samples=options["nb_samples"], smooth_noise=options["noise"] / 255.0)
    return lambda: np.asarray(visualizer(score, images, **cam))


def xplique_call(lib, method, model, layer, images, ids, options, batch):
    """A call of xplique's counterpart of `method` (None: none), as
    `() -> (B, H, W)` maps."""
    if lib is None or ids is None:
        return None
    settings = {
        "gradcam": ("GradCAM", dict(conv_layer=layer)),
        "gradcampp": ("GradCAMPP", dict(conv_layer=layer)),
        "saliency": ("Saliency", dict(reducer="max")),
        "smoothgrad": ("SmoothGrad", dict(reducer="mean", nb_samples=options.get("nb_samples"),
                                          noise=options.get("noise"))),
        "integrated_gradients": ("IntegratedGradients", dict(
            reducer="mean", steps=options.get("steps"),
            baseline_value=options.get("baseline_value"))),
        "occlusion": ("Occlusion", dict(patch_size=options.get("patch_size"),
                                        patch_stride=options.get("patch_stride"),
                                        occlusion_value=options.get("occlusion_value"))),
        "rise": ("Rise", dict(nb_samples=options.get("nb_samples"),
                              grid_size=options.get("grid_size"),
                              preservation_probability=options.get("preservation_probability"),
                              mask_value=0.0)),
    }
    if method not in settings:
        return None
    name, kwargs = settings[method]
    explainer = getattr(lib, name)(model, batch_size=batch, **kwargs)
    one_hot = tf.one_hot(ids, model.output_shape[-1])
    return lambda: np.asarray(explainer.explain(images, one_hot))[..., 0]


def interleaved(contenders, repeats):
    """({name: best seconds}, {name: warm-up result}): each contender called
    once untimed, then `repeats` rounds calling each once in turn (reversed
    every other round)."""
    results = {name: fn() for name, fn in contenders.items()}
    best = dict.fromkeys(contenders, float("inf"))
    names = list(contenders)
    for round_ in range(repeats):
        for name in names if round_ % 2 == 0 else names[::-1]:
            best[name] = min(best[name], _timed(contenders[name])[0])
    return best, results


def flat_copy(model):
    """`model` with its nested models inlined (`tfcaf.graph.replay`), as a
    model of its own layers with `model`'s weights: the peers look a layer
    up at the top level and read its `.output`, so they need each layer
    called once in one flat graph. `model` itself when nothing is nested."""
    if not any(isinstance(layer, keras.Model) for layer in model.layers):
        return model
    inputs = graph.fresh_inputs(model)
    flat = keras.Model(inputs, graph.replay(model, inputs))
    copy = keras.models.clone_model(flat)
    copy.set_weights(flat.get_weights())
    return copy


def build_network(case, size):
    """(Explainer, the peers' model, the layer) of `case` at `size` px."""
    from tfcaf.models import build_model
    keras.utils.set_random_seed(0)
    if case == "resnet50":
        model = keras.applications.ResNet50(weights=None, input_shape=(size, size, 3),
                                            classifier_activation=None)
    else:
        model = build_model("tiny_resnet", "adl", num_classes=10, image_size=size, seed=0)
    explainer = Explainer(model, LAYERS[case])
    return explainer, flat_copy(model), explainer.layer


def settings_text(method, options, size):
    shown = {k: v for k, v in options.items() if v is not None and k != "seed"}
    values = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in shown.items())
    return f"{size} px" + (f"; {values}" if values else "")


def cell(seconds, count, forward):
    if seconds is None:
        return "—"
    return f"{seconds * 1e3 / count:.1f} ({seconds / forward:.2f}×)"


def run_row(case, method, network, images, args, peers):
    explainer, model, peer_layer = network
    spec = METHODS[method]
    count = len(images)
    options = {}
    if spec.many_passes:
        options = dict(MANY_PASS[case][method][args.quick][1])
    full_options = dict(spec.options, **options) if not spec.iterative else {}
    reason = explainer.supports(method)
    if reason:
        return f"| {case} | {method} | n/a: {reason} | | | | | | | |"
    outputs = explainer.forward(images)[1].numpy()
    ids = np.argmax(outputs, -1).astype(np.int32) if explainer.takes_targets(method) else None
    contenders = {
        "forward": lambda: explainer.forward(images)[1].numpy(),
        "tfcaf": lambda: explainer.explain(images, method=method, targets=ids,
                                           **options).heatmaps,
    }
    calls = {"tf-keras-vis": tf_keras_vis_call(peers["tf-keras-vis"], method, model,
                                                peer_layer, images.numpy(), ids, full_options),
             "xplique": xplique_call(peers["xplique"], method, model, peer_layer, images, ids,
                                     full_options, args.batch)}
    contenders.update({k: v for k, v in calls.items() if v is not None})
    best, results = interleaved(contenders, args.repeats)
    forward = best["forward"]
    peer_times = [best[p] for p in PEERS if p in best]
    ratio = f"{min(peer_times) / best['tfcaf']:.2f}" if peer_times else "—"
    mine = results["tfcaf"]
    agreement = " / ".join(
        f"{pearson_per_image(mine, np.reshape(results[p], mine.shape)).min():.2f}"
        if p in best else "—" for p in PEERS)
    size = images.shape[1]
    return (f"| {case} | {method} | {settings_text(method, options, size)} | {count} | "
            f"{forward * 1e3 / count:.1f} | {cell(best['tfcaf'], count, forward)} | "
            + " | ".join(cell(best.get(p), count, forward) for p in PEERS)
            + f" | {ratio} | {agreement} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(LAYERS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=224, help="ResNet50's input size")
    parser.add_argument("--many_pass_size", type=int, default=112,
                        help="ResNet50's input size for the many-pass methods")
    parser.add_argument("--many_pass_images", type=int, default=None,
                        help="images of every many-pass row (default: each row's own)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--image_seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="small sizes for development: " +
                             ", ".join(f"--{k}={v}" for k, v in QUICK.items()))
    args = parser.parse_args()
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    started = time.perf_counter()
    keras.config.disable_interactive_logging()  # Scorecam's model.predict bars
    # tf-keras-vis calls its models on lists of one input.
    warnings.filterwarnings("ignore", message="The structure of `inputs`")
    peers = load_peers()
    versions = {"tensorflow": tf.__version__, "keras": keras.__version__}
    for name, module in (("tf-keras-vis", "tf_keras_vis"), ("xplique", "xplique")):
        if peers[name] is not None:
            versions[name] = __import__(module).__version__
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
          + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print("\n| network | method | settings | images | forward ms/img | tfcaf ms/img (× fwd) | "
          "tf-keras-vis ms/img (× fwd) | xplique ms/img (× fwd) | peer ÷ tfcaf | "
          "r tf-keras-vis / xplique |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |", flush=True)
    networks = {}
    for case in args.cases.split(","):
        for method in args.methods.split(","):
            many = METHODS[method].many_passes
            size = (args.many_pass_size if many else args.size) if case == "resnet50" \
                else DIGITS_SIZE
            if (case, size) not in networks:
                networks[case, size] = build_network(case, size)
            count = args.batch
            if many:
                count = MANY_PASS[case][method][args.quick][0] or args.batch
                count = args.many_pass_images or count
            images = tf.random.stateless_uniform((count, size, size, 3), [args.image_seed, 0],
                                                 0, 255)
            print(run_row(case, method, networks[case, size], images, args, peers), flush=True)
    elapsed = time.perf_counter() - started
    print(f"\n{elapsed:.0f} s ({elapsed / 60:.1f} min), load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
