"""Writes tests/data/golden/tf_keras_vis.npz: tf-keras-vis 0.8.7's maps on
the golden networks of tools/golden_net.py, for the parity tests of tfcaf's
gradcam, gradcampp, scorecam, layercam, saliency and smoothgrad.

Runs in the side virtualenv made by tools/make_xplique_golden.sh (shared
with xplique: tensorflow-cpu 2.21 / Keras 3.15 as the project), on the CPU.

Every CAM call passes penultimate_layer="features" and
seek_penultimate_conv_layer=False: by default tf-keras-vis walks from the
given layer back to the nearest Conv layer (here "features" is a Conv2D
already, but on ResNet50's conv5_block3_out it would explain
conv5_block3_3_conv).

Targets (the `target` of a case):
  class       classifier, CategoricalScore([0, 1, 2, 3]) on the logits.
  top1        classifier, CategoricalScore(each image's arg-max logit).
  similarity  embedding net, score(output) = cosine similarity of each row of
              `output` (B, 8) to the reference embeddings (B, 8) of
              golden_net.sample_images(seed=2): e.r / max(|e| |r|, 1e-8).
              Scorecam calls the score on K.softmax(model output), for the
              embedding too (the library does so unconditionally): its
              similarity weights are cos(softmax(e_masked), r).

Outputs of each CAM case (one library call each):
  normalized    expand_cam=True, normalize_cam=True (the defaults): (B, 32, 32)
  unnormalized  expand_cam=True, normalize_cam=False: (B, 32, 32)
  raw           expand_cam=False, normalize_cam=False: the (B, 16, 16) map
                at feature-map resolution, after the ReLU
                (activation_modifier), before scipy's zoom(order=1).
Expanding is scipy.ndimage.zoom(cam, (1, 2, 2), order=1) (mode "constant",
corner-aligned grid); normalising is (x - min) / (max - min + 1e-7) per image.
  gradients     Gradcam: what `_calculate_cam` received, d score / d features
                (B, 16, 16, 16) (and the features, checked equal to
                `<network>.features`), recorded by wrapping that method around
                the library's own. Layercam's (captured the same way) are
                checked equal to Grad-CAM's and not stored again; Grad-CAM++
                takes the same gradients inside its __call__ (no hook).
  score_values  the (B,) scores the gradient was taken of.
  weights       Scorecam: the per-channel scores its score function returned
                (B, channels), recorded by wrapping the score function.
  channels      Scorecam: the channel indices it kept (all 16 when max_N is
                None; with max_N: per image top-max_N by spatial std, then
                tf.unique over the batch, in that order), recomputed with the
                library's own lines.
Saliency: `normalized` (normalize_map=True) and `unnormalized`; both are
max over channels of |d score / d image| (keepdims=False).
SmoothGrad (Saliency with smooth_samples=20, smooth_noise=0.2): the noise is
the library's own draw, `np.random.normal(0, sigma, (20, B, 32, 32, 3))`,
recorded by wrapping numpy.random.normal (numpy's global seed set to
NOISE_SEED before every smoothgrad call, so every case draws the same
noise); stored as the float32 it was cast to when added to the images:
`smoothgrad.noise`. sigma = 0.2 * (max - min) of each image.

File layout: `meta` is a JSON list of case descriptions, `info` a JSON dict
of versions; shared arrays as in xplique.npz (`images`, `reference_images`,
`reference_embeddings`, `classifier.logits`, `embedding.embeddings`,
`<network>.features`, `target_ids.<target>`), per case `<case>.<output>`.
"""

import argparse
import pathlib
import sys

import numpy as np
import tensorflow as tf

import keras
import tf_keras_vis
from tf_keras_vis.gradcam import Gradcam
from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
from tf_keras_vis.layercam import Layercam
from tf_keras_vis.saliency import Saliency
from tf_keras_vis.scorecam import Scorecam
from tf_keras_vis.utils.scores import CategoricalScore

TOOLS = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(TOOLS))
import golden_net  # noqa: E402

REPO = TOOLS.parent
DEFAULT_OUT = REPO / "tests" / "data" / "golden" / "tf_keras_vis.npz"
NOISE_SEED = 22
CAM_KW = dict(penultimate_layer=golden_net.FEATURE_LAYER, seek_penultimate_conv_layer=False)


class CosineScore:
    """score(output (B, D)) -> (B,) cosine similarity to references (B, D)."""

    def __init__(self, references):
        self.references = tf.constant(references)

    def __call__(self, output):
        dots = tf.reduce_sum(output * self.references, axis=-1)
        norms = tf.norm(output, axis=-1) * tf.norm(self.references, axis=-1)
        return dots / tf.maximum(norms, 1e-8)


class Recording:
    """Wraps a score function and keeps what it returned."""

    def __init__(self, score):
        self.score, self.seen = score, []

    def __call__(self, output):
        value = self.score(output)
        self.seen.append(np.asarray(value))
        return value


def capture_calculate_cam(cls):
    """Wraps cls._calculate_cam; returns the dict the last call fills."""
    last = {}
    original = cls._calculate_cam

    def wrapped(self, grads, penultimate_output, gradient_modifier, activation_modifier):
        last["gradients"] = np.asarray(grads)
        last["features"] = np.asarray(penultimate_output)
        return original(self, grads, penultimate_output, gradient_modifier, activation_modifier)

    cls._calculate_cam = wrapped
    return last


def scorecam_channels(features, max_n):
    """The channels Scorecam keeps (the library's lines, scorecam.py)."""
    if max_n is None or max_n >= features.shape[-1]:
        return np.arange(features.shape[-1])
    std = tf.math.reduce_std(features, axis=(1, 2), keepdims=True)
    _, top_k = tf.math.top_k(std, max_n)
    top_k, _ = tf.unique(tf.reshape(top_k, (-1,)))
    return top_k.numpy()


CAMS = {
    # name: (class, extra settings); the rest are the library's defaults.
    "gradcam": (Gradcam, {}),
    "gradcampp": (GradcamPlusPlus, {}),
    "layercam": (Layercam, {}),
    "scorecam": (Scorecam, dict(batch_size=32, max_N=None)),
    "scorecam_n4": (Scorecam, dict(batch_size=32, max_N=4)),
}
SMOOTH = dict(smooth_samples=20, smooth_noise=0.2)


def build(out):
    tf.config.set_visible_devices([], "GPU")
    run = golden_net.reference_run()
    models, images, reference_images = run["models"], run["images"], run["reference_images"]
    logits, embeddings, references = run["logits"], run["embeddings"], run["references"]
    top1 = run["top1"]
    targets = {
        "class": ("classifier", np.arange(4)),
        "top1": ("classifier", top1),
        "similarity": ("embedding", None),
    }

    def make_score(target):
        network, ids = targets[target]
        if ids is None:
            return CosineScore(references)
        return CategoricalScore([int(i) for i in ids])

    arrays = {"images": images, "reference_images": reference_images,
              "reference_embeddings": references, "classifier.logits": logits,
              "embedding.embeddings": embeddings}
    for name, (_, ids) in targets.items():
        if ids is not None:
            arrays[f"target_ids.{name}"] = ids.astype(np.int64)
    for kind, model in models.items():
        feature_model = keras.Model(model.inputs, model.get_layer(golden_net.FEATURE_LAYER).output)
        arrays[f"{kind}.features"] = feature_model(images).numpy()
    score_values = {}
    for target, (network, ids) in targets.items():
        score_values[target] = np.asarray(make_score(target)(
            tf.constant(logits if network == "classifier" else embeddings)), np.float32)

    captured = {Gradcam: capture_calculate_cam(Gradcam),
                Layercam: capture_calculate_cam(Layercam)}
    meta = []
    for method, (cls, settings) in CAMS.items():
        for target, (network, _) in targets.items():
            name = f"{method}.{target}"
            visualizer = cls(models[network], clone=True)
            fields = {}
            for output, kw in (("normalized", dict(expand_cam=True, normalize_cam=True)),
                               ("unnormalized", dict(expand_cam=True, normalize_cam=False)),
                               ("raw", dict(expand_cam=False, normalize_cam=False))):
                score = Recording(make_score(target))
                cam = visualizer(score, images, **CAM_KW, **settings, **kw)
                fields[output] = np.asarray(cam, np.float32)
                if cls in captured:
                    for key in ("gradients", "features"):
                        fields[key] = captured[cls][key].astype(np.float32)
                if cls is Scorecam:
                    # One call per kept channel, each (B,): -> (B, channels).
                    fields["weights"] = np.stack(score.seen, axis=1).astype(np.float32)
            np.testing.assert_array_equal(fields.get("features", arrays[f"{network}.features"]),
                                          arrays[f"{network}.features"])
            fields.pop("features", None)
            if cls is Layercam:
                # The same score and layer as Grad-CAM: the same gradients,
                # stored once (gradcam.<target>.gradients).
                np.testing.assert_array_equal(fields.pop("gradients"),
                                              arrays[f"gradcam.{target}.gradients"])
            if cls is Scorecam:
                fields["channels"] = scorecam_channels(
                    tf.constant(arrays[f"{network}.features"]), settings["max_N"]).astype(np.int64)
                assert fields["weights"].shape[1] == len(fields["channels"])
            fields["score_values"] = score_values[target]
            for field, value in fields.items():
                arrays[f"{name}.{field}"] = value
            meta.append({"name": name, "method": method, "tf_keras_vis_class": cls.__name__,
                         "network": network, "target": target,
                         "settings": {**CAM_KW, **settings}, "fields": sorted(fields)})
            print(name, {k: v.shape for k, v in fields.items()}, flush=True)

    original_normal = np.random.normal
    drawn = []

    def recording_normal(*args, **kwargs):
        value = original_normal(*args, **kwargs)
        drawn.append(value)
        return value

    for method, settings in (("saliency", {}), ("smoothgrad", SMOOTH)):
        for target, (network, _) in targets.items():
            name = f"{method}.{target}"
            visualizer = Saliency(models[network], clone=True)
            fields = {}
            for output, normalize_map in (("normalized", True), ("unnormalized", False)):
                if settings:
                    np.random.seed(NOISE_SEED)
                    np.random.normal = recording_normal
                try:
                    value = visualizer(make_score(target), images, normalize_map=normalize_map,
                                       **settings)
                finally:
                    np.random.normal = original_normal
                fields[output] = np.asarray(value, np.float32)
            fields["score_values"] = score_values[target]
            for field, value in fields.items():
                arrays[f"{name}.{field}"] = value
            meta.append({"name": name, "method": method, "tf_keras_vis_class": "Saliency",
                         "network": network, "target": target,
                         "settings": {"keepdims": False, "gradient_modifier": "abs",
                                      **({"smooth_samples": 0} if not settings else settings)},
                         "fields": sorted(fields)})
            print(name, {k: v.shape for k, v in fields.items()}, flush=True)
    assert len(drawn) == 6 and all(np.array_equal(d, drawn[0]) for d in drawn), len(drawn)
    arrays["smoothgrad.noise"] = drawn[0].astype(np.float32)

    info = {
        "library": "tf-keras-vis", "versions": {
            "tf-keras-vis": tf_keras_vis.__version__, "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__,
            "scipy": __import__("scipy").__version__},
        "device": "CPU", "image_seed": 1, "reference_seed": 2, "weights_seed": 0,
        "feature_layer": golden_net.FEATURE_LAYER,
        "shared": {"smoothgrad.noise": "(smooth_samples, B, 32, 32, 3) float32, sample s of "
                                       "image i is images[i] + noise[s, i]"},
        "similarity_score": "sum(e * r) / max(|e| |r|, 1e-8)",
    }
    size = golden_net.save(out, meta, info, arrays)
    print(f"wrote {len(meta)} cases to {out} ({size:.0f} KiB) with tf-keras-vis {tf_keras_vis.__version__}, "
          f"TF {tf.__version__}, Keras {keras.__version__}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    build(args.out)


if __name__ == "__main__":
    main()
