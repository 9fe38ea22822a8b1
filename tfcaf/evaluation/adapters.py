"""What evaluation needs from a model, for `.keras` models and SavedModels:
its outputs and a heatmap per method."""

import os

import numpy as np
import tensorflow as tf

from tfcaf import applications, models
from tfcaf.caf import Explainer
from tfcaf.caf.heatmaps import to_image_size

METHODS = ("cam", "gradcam", "l2caf", "l2caf_specific")


class KerasAdapter:
    """A Keras model; CAM comes from its own map for ACoL models.

    Args:
        model: tfcaf model (raw pixels in, logits or embedding out).
        iterations: L2-CAF iteration cap.
        layer: split layer (default: the last 4-D layer).
    """

    def __init__(self, model, iterations=1000, layer=None):
        self.model, self.iterations = model, iterations
        self.explainer = Explainer(model, layer=layer)
        self.embedding = self.explainer.output == "embedding"
        self._predict = tf.function(lambda x: model(x, training=False))

    @property
    def image_size(self):
        """(H, W) the model takes (224 where its input size is open)."""
        return applications.input_size(self.model)

    def supports(self, method):
        """None when `method` applies to this model, else the reason."""
        if method not in METHODS:
            return f"unknown method '{method}'; choose from {', '.join(METHODS)}"
        if self.embedding and method in ("cam", "l2caf_specific"):
            return f"{method} needs class logits; this model outputs an embedding"
        if method == "cam" and self.explainer.split.dense is None and \
                not isinstance(self.model, models.ACoLModel):
            return "CAM needs a Dense(GlobalAveragePooling2D) head"
        return None

    def outputs(self, images):
        """(B, K) logits or (B, D) embeddings."""
        return self._predict(images).numpy()

    def maps(self, images, labels, method):
        """(raw (B, h, w), heatmaps (B, H, W) in [0, 1]); class-based methods
        explain `labels` (the ground-truth class, which equals the top-1
        class wherever top-1 localization can count)."""
        size = images.shape[1:3]
        if method == "cam" and isinstance(self.model, models.ACoLModel):
            fused = models.acol_localization_map(self.model, images, labels)
            return fused.numpy(), to_image_size(fused, size).numpy()
        targets = None if method == "l2caf" or (self.embedding and method == "gradcam") \
            else labels
        options = {"max_iterations": self.iterations} if method.startswith("l2caf") else {}
        result = self.explainer.explain(images, method, targets, **options)
        return result.maps, result.heatmaps

    def heatmaps(self, images, labels, method):
        """(B, H, W) heatmaps in [0, 1] (see `maps`)."""
        return self.maps(images, labels, method)[1]


class SavedModelAdapter:
    """An export of `tfcaf.export`: outputs from `serving_default`, L2-CAF
    from the `explain` signatures (their iteration count was fixed at export
    time); CAM and Grad-CAM are not in an export."""

    def __init__(self, path):
        self.loaded = tf.saved_model.load(path)
        self.signatures = self.loaded.signatures
        self.embedding = "explain_oblivious" not in self.signatures

    @property
    def image_size(self):
        """(H, W) of the export's `images` input."""
        spec = self.signatures["serving_default"].structured_input_signature[1]["images"]
        return (int(spec.shape[1]), int(spec.shape[2]))

    def supports(self, method):
        if method == "l2caf" or (method == "l2caf_specific" and not self.embedding):
            return None
        return f"{method} is not available from a SavedModel (only l2caf" + \
            ("" if self.embedding else ", l2caf_specific") + ")"

    def outputs(self, images):
        result = self.signatures["serving_default"](images=tf.constant(images))
        return (result["embedding"] if self.embedding else result["probabilities"]).numpy()

    def heatmaps(self, images, labels, method):
        images = tf.constant(images)
        if method == "l2caf_specific":
            result = self.signatures["explain"](images=images,
                                                targets=tf.constant(labels, tf.int32))
        else:
            name = "explain" if self.embedding else "explain_oblivious"
            result = self.signatures[name](images=images)
        return result["heatmaps"].numpy()


def load_adapter(path, iterations=1000, layer=None):
    """A `KerasAdapter` for a `.keras` file, a `SavedModelAdapter` for an
    export folder; errors name the path."""
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise FileNotFoundError(f"'{path}' is neither a .keras file nor a SavedModel folder")
        return SavedModelAdapter(path)
    model, _ = applications.load_model(path)
    return KerasAdapter(model, iterations=iterations, layer=layer)


def top1_correct(outputs, labels, embedding):
    """(N,) bool: top-1 class right (classifiers), or nearest other item of
    the same class (retrieval nets, the seed's R@1 condition)."""
    if not embedding:
        return outputs.argmax(-1) == labels
    x = outputs.astype(np.float64)
    squared = (x ** 2).sum(1)
    nearest = np.empty(len(x), np.int64)
    for start in range(0, len(x), 1024):  # chunks: no N x N matrix
        rows = slice(start, start + 1024)
        distances = squared[rows, None] + squared[None, :] - 2 * x[rows] @ x.T
        distances[np.arange(distances.shape[0]), np.arange(start, start + distances.shape[0])] = np.inf
        nearest[rows] = distances.argmin(1)
    return labels[nearest] == labels
