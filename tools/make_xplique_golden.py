"""Writes tests/data/golden/xplique.npz: xplique 2.0.2's attributions on the
golden networks of tools/golden_net.py, for the parity tests of tfcaf's
saliency, smoothgrad, integrated_gradients, occlusion, rise, gradcam and
gradcampp.

Runs in the side virtualenv made by tools/make_xplique_golden.sh
(tensorflow-cpu 2.21 / Keras 3.15 as the project, xplique --no-deps), on the
CPU, never in the project's venv.

Targets (the `target` of a case):
  class       classifier, class ids [0, 1, 2, 3], one-hot (B, 5) as xplique
              expects, default operator: score = sum(logits * one_hot).
  top1        classifier, each image's arg-max logit, one-hot.
  similarity  embedding net, targets = the reference embeddings (B, 8) of
              golden_net.sample_images(seed=2); custom operator
              `cosine_similarity_operator` (xplique takes any
              g(model, inputs, targets) -> (N,) as `operator=`):
              score = e.r / max(|e| |r|, 1e-8), as torch's CosineSimilarity
              in pytorch-grad-cam's SimilarityToConceptTarget.
              GradCAM / GradCAMPP ignore `operator` (their `_gradient`
              hard-codes score = sum(model(x) * targets)); with unit-norm
              embeddings and unit-norm references that is the same cosine, so
              they get the references as targets and no operator.

Captured random tensors (so tfcaf can take them as arguments):
  smoothgrad  `GradientStatistic._perturb_samples` (a tf.function that adds
              tf.random.normal(0, noise) to the repeated inputs) is replaced
              by the same sum with noise drawn here: tf.random.normal(0,
              noise) rounded to float16 (stored exactly, half the bytes), one
              tensor `smoothgrad.noise` (B, nb_samples, 32, 32, 3) replayed
              in every smoothgrad case. Image i's perturbed inputs are
              images[i] + noise[i] (xplique walks one image at a time in
              chunks of 32 samples: 32 + 18, in sample order).
  rise        `Rise._get_masks` is wrapped: the first call's binary masks
              (nb_samples, 7, 7, 1) bool are stored as `rise.masks` and
              replayed in every rise case. `Rise._apply_masks` runs as
              xplique's own tf.function; its random crop offset is read back
              by matching its output against the bilinear (tf.image.resize,
              half-pixel) upsampling of the chunk's masks to
              (int(32 * (1 + 1/7)),) * 2 = (36, 36): `<case>.crop_offsets`
              (B, n_chunks, 2) int (dy, dx); chunk c holds masks
              [32c, 32c + 32). The per-mask scores xplique computed are
              recorded from its inference function: `<case>.scores`
              (B, nb_samples).
Raw maps:
  gradcam, gradcampp  xplique resizes (B, 16, 16) to (B, 32, 32, 1) with
              tf.image.resize(..., BICUBIC) per image (tf.map_fn). The raw
              map `<case>.raw` (B, 16, 16) comes from the explainer's own
              internals on the same batch: `_gradient` (feature maps and
              their gradients, stored as `<network>.features` and
              `<case>.gradients`), `_compute_weights` (`<case>.weights`,
              (B, 16)) and `_apply_weights` (ReLU of the weighted sum).
Input-space methods return (B, 32, 32, 1) with no resizing; the channel
reducer is Saliency's "max" of |gradient|, "mean" for SmoothGrad and IG.

File layout: `meta` is a JSON list of case descriptions (name, method,
xplique class, network, target, settings); `info` a JSON dict of versions
and shared arrays. Arrays: `images` (4, 32, 32, 3), `reference_images`,
`reference_embeddings` (4, 8), `classifier.logits` (4, 5),
`embedding.embeddings` (4, 8), `<network>.features` (4, 16, 16, 16),
`targets.<target>` (what was passed as targets), `target_ids.<target>`,
and per case `<case>.explanation` (what `explain` returned) plus the
fields above.
"""

import argparse
import pathlib
import sys

import numpy as np
import tensorflow as tf

import keras
import xplique
from xplique.attributions import (GradCAM, GradCAMPP, IntegratedGradients,
                                  Occlusion, Rise, Saliency, SmoothGrad)
from xplique.attributions.gradient_statistics.gradient_statistic import GradientStatistic

TOOLS = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(TOOLS))
import golden_net  # noqa: E402

REPO = TOOLS.parent
DEFAULT_OUT = REPO / "tests" / "data" / "golden" / "xplique.npz"
NOISE_SEED = 22
RISE_SEED = 23


@tf.function
def cosine_similarity_operator(model, inputs, targets):
    """(N,) cosine similarity of model(inputs) (N, D) to targets (N, D)."""
    embeddings = model(inputs)
    dots = tf.reduce_sum(embeddings * targets, axis=-1)
    norms = tf.norm(embeddings, axis=-1) * tf.norm(targets, axis=-1)
    return dots / tf.maximum(norms, 1e-8)


# --- captured randomness ------------------------------------------------

class NoiseReplay:
    """Stands in for GradientStatistic._perturb_samples: same sum, noise
    drawn once per (image, sample) and replayed in every later case."""

    def __init__(self, images, nb_samples, noise):
        self.images = images
        self.noise = None
        self.nb_samples, self.stddev = nb_samples, noise
        self.offsets = {}

    def start_case(self):
        self.offsets = {}

    def __call__(self, inputs, nb_perturbations, noise):
        assert noise == self.stddev and inputs.shape[0] == 1, (noise, inputs.shape)
        if self.noise is None:
            draw = tf.random.normal((len(self.images), self.nb_samples, *inputs.shape[1:]),
                                    0.0, noise, dtype=tf.float32, seed=NOISE_SEED)
            self.noise = draw.numpy().astype(np.float16)
        index = int(np.argmin(np.abs(self.images - inputs.numpy()).max(axis=(1, 2, 3))))
        assert np.array_equal(self.images[index], inputs.numpy()[0])
        start = self.offsets.get(index, 0)
        self.offsets[index] = start + nb_perturbations
        noise_chunk = tf.constant(self.noise[index, start:start + nb_perturbations]
                                  .astype(np.float32))
        # As xplique: tf.repeat then +=, in float32.
        perturbed = tf.repeat(inputs, repeats=nb_perturbations, axis=0)
        perturbed += noise_chunk
        return perturbed


class RiseCapture:
    """Wraps Rise._get_masks (store, then replay) and Rise._apply_masks
    (xplique's own, offsets read back from its output)."""

    def __init__(self):
        self.masks = None
        self.original_get_masks = Rise._get_masks
        self.original_apply_masks = Rise._apply_masks
        self.offsets = []

    def start_case(self):
        self.offsets = []

    def get_masks(self, input_shape, nb_samples, grid_size, preservation_probability):
        if self.masks is None:
            tf.random.set_seed(RISE_SEED)
            self.masks = self.original_get_masks(
                input_shape, nb_samples, grid_size, preservation_probability).numpy()
        assert self.masks.shape[0] == nb_samples
        return tf.constant(self.masks)

    def apply_masks(self, single_input, binary_masks, mask_value=0.0):
        masked_input, masks = self.original_apply_masks(single_input, binary_masks, mask_value)
        height, width = single_input.shape[:2]
        up = (int(height * (1.0 + 1.0 / binary_masks.shape[1])),
              int(width * (1.0 + 1.0 / binary_masks.shape[2])))
        upsampled = tf.image.resize(tf.cast(binary_masks, tf.float32), up).numpy()
        masks_np = masks.numpy()
        best = None
        for dy in range(up[0] - height + 1):
            for dx in range(up[1] - width + 1):
                err = np.abs(upsampled[:, dy:dy + height, dx:dx + width] - masks_np).max()
                if best is None or err < best[0]:
                    best = (err, dy, dx)
        assert best[0] < 1e-6, f"crop offset not found (error {best[0]})"
        self.offsets.append((best[1], best[2]))
        return masked_input, masks

    def install(self):
        Rise._get_masks = staticmethod(self.get_masks)
        Rise._apply_masks = staticmethod(self.apply_masks)


def record_scores(explainer):
    """Wraps explainer.inference_function; returns the list it appends to."""
    seen = []
    inner = explainer.inference_function

    def recording(model, inputs, targets):
        scores = inner(model, inputs, targets)
        seen.append(scores.numpy())
        return scores

    explainer.inference_function = recording
    return seen


# --- cases ----------------------------------------------------------------

METHODS = {
    # name: (xplique class, settings passed to the constructor); every
    # setting is the library's default unless the name says otherwise.
    "saliency": (Saliency, dict(batch_size=32, reducer="max")),
    "smoothgrad": (SmoothGrad, dict(batch_size=32, reducer="mean", nb_samples=50, noise=0.2)),
    "integrated_gradients": (IntegratedGradients,
                             dict(batch_size=32, reducer="mean", steps=50, baseline_value=0.0)),
    "occlusion": (Occlusion, dict(batch_size=32, patch_size=3, patch_stride=3,
                                  occlusion_value=0.0)),
    "occlusion_p8s4": (Occlusion, dict(batch_size=32, patch_size=8, patch_stride=4,
                                       occlusion_value=0.0)),
    "rise": (Rise, dict(batch_size=32, nb_samples=200, grid_size=7,
                        preservation_probability=0.5, mask_value=0.0)),
    "gradcam": (GradCAM, dict(batch_size=32, conv_layer=golden_net.FEATURE_LAYER)),
    "gradcampp": (GradCAMPP, dict(batch_size=32, conv_layer=golden_net.FEATURE_LAYER)),
}
CAMS = ("gradcam", "gradcampp")


def build(out):
    tf.config.set_visible_devices([], "GPU")
    run = golden_net.reference_run()
    models, images, reference_images = run["models"], run["images"], run["reference_images"]
    logits, embeddings, references = run["logits"], run["embeddings"], run["references"]
    top1 = run["top1"]
    targets = {
        "class": ("classifier", np.arange(4), np.eye(5, dtype=np.float32)[np.arange(4)]),
        "top1": ("classifier", top1, np.eye(5, dtype=np.float32)[top1]),
        "similarity": ("embedding", None, references),
    }
    arrays = {"images": images, "reference_images": reference_images,
              "reference_embeddings": references, "classifier.logits": logits,
              "embedding.embeddings": embeddings}
    for name, (network, ids, target) in targets.items():
        arrays[f"targets.{name}"] = target
        if ids is not None:
            arrays[f"target_ids.{name}"] = ids.astype(np.int64)
    feature_model = {kind: keras.Model(m.inputs, m.get_layer(golden_net.FEATURE_LAYER).output)
                     for kind, m in models.items()}
    for kind in models:
        arrays[f"{kind}.features"] = feature_model[kind](images).numpy()

    noise = NoiseReplay(images, METHODS["smoothgrad"][1]["nb_samples"],
                        METHODS["smoothgrad"][1]["noise"])
    GradientStatistic._perturb_samples = staticmethod(noise)
    rise = RiseCapture()
    rise.install()

    meta = []
    for method, (cls, settings) in METHODS.items():
        for target_name, (network, _, target) in targets.items():
            name = f"{method}.{target_name}"
            model = models[network]
            kwargs = dict(settings)
            operator = None
            if network == "embedding" and method not in CAMS:
                operator = cosine_similarity_operator
                kwargs["operator"] = operator
            explainer = cls(model, **kwargs)
            noise.start_case()
            rise.start_case()
            scores = record_scores(explainer) if method == "rise" else None
            explanation = explainer.explain(images, target)
            arrays[f"{name}.explanation"] = np.asarray(explanation, np.float32)
            fields = ["explanation"]
            if method == "rise":
                n_chunks = -(-settings["nb_samples"] // settings["batch_size"])
                arrays[f"{name}.crop_offsets"] = np.array(rise.offsets, np.int64).reshape(
                    len(images), n_chunks, 2)
                arrays[f"{name}.scores"] = np.concatenate(scores).reshape(len(images), -1)
                fields += ["crop_offsets", "scores"]
            if method in CAMS:
                x, y = tf.constant(images), tf.constant(target)
                feature_maps, gradients = explainer._gradient(x, y)
                cam_weights = explainer._compute_weights(gradients, feature_maps)
                raw = cls._apply_weights(cam_weights, feature_maps)
                np.testing.assert_array_equal(feature_maps.numpy(),
                                              arrays[f"{network}.features"])
                arrays[f"{name}.gradients"] = gradients.numpy()
                arrays[f"{name}.weights"] = tf.reshape(cam_weights, (len(images), -1)).numpy()
                arrays[f"{name}.raw"] = raw.numpy()
                fields += ["gradients", "weights", "raw"]
            meta.append({
                "name": name, "method": method, "xplique_class": cls.__name__,
                "network": network, "target": target_name,
                "operator": "cosine_similarity_operator" if operator else
                            "default: sum(model(x) * targets, -1)",
                "settings": {k: v for k, v in settings.items()},
                "fields": fields,
            })
            print(f"{name}: {arrays[f'{name}.explanation'].shape}", flush=True)
    arrays["smoothgrad.noise"] = noise.noise
    arrays["rise.masks"] = rise.masks
    info = {
        "library": "xplique", "versions": {
            "xplique": xplique.__version__, "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__},
        "device": "CPU",
        "image_seed": 1, "reference_seed": 2, "weights_seed": 0,
        "feature_layer": golden_net.FEATURE_LAYER,
        "shared": {"smoothgrad.noise": "(B, nb_samples, 32, 32, 3) float16, added to "
                                       "images[i] in every smoothgrad case",
                   "rise.masks": "(nb_samples, 7, 7, 1) bool, every rise case"},
        "similarity_score": "sum(e * r) / max(|e| |r|, 1e-8)",
    }
    size = golden_net.save(out, meta, info, arrays)
    print(f"wrote {len(meta)} cases to {out} ({size:.0f} KiB) with xplique {xplique.__version__}, "
          f"TF {tf.__version__}, Keras {keras.__version__}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    build(args.out)


if __name__ == "__main__":
    main()
