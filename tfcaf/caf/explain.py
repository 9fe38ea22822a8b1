"""Public entry point: `explain(model, images, method=...)` and `Explainer`."""

import weakref
from dataclasses import dataclass, replace

import keras
import numpy as np
import tensorflow as tf

from tfcaf.caf import baselines, filters, heatmaps, objective
from tfcaf.caf.solver import SolverConfig
from tfcaf.caf.split import split_model

METHODS = ("l2caf", "l2caf_specific", "cam", "gradcam")


@dataclass
class Explanation:
    """Heatmaps for a batch of B images (T targets each when asked for).

    Attributes:
        heatmaps: (B, H, W) — or (B, T, H, W) when targets were given as a
            (B, T) array — float32 in [0, 1] at image size.
        maps: the raw maps at feature-map size, (B, h, w) or (B, T, h, w).
        targets: (B,) or (B, T) class ids explained; None for
            class-oblivious L2-CAF and embedding Grad-CAM.
        layer: name of the layer that was split.
        method: one of `METHODS`.
        iterations, losses: L2-CAF only: updates and last loss per problem,
            shaped like `targets` (or (B,)).
        snapshots: L2-CAF with `snapshot_every`: (B[, T], S, h, w) maps.
    """
    heatmaps: np.ndarray
    maps: np.ndarray
    targets: np.ndarray | None
    layer: str
    method: str
    iterations: np.ndarray | None = None
    losses: np.ndarray | None = None
    snapshots: np.ndarray | None = None


def _output_kind(model):
    """"embedding" for retrieval nets (final layer named like one), else
    "logits"."""
    last = model.layers[-1]
    name = last.name.lower()
    if "embedding" in name or type(last).__name__ == "UnitNormalization":
        return "embedding"
    return "logits"


class Explainer:
    """L2-CAF, CAM and Grad-CAM for one model split at one layer.

    Build once and call `explain` many times: the split and the compiled
    solver are reused.

    Args:
        model: functional/Sequential Keras model taking (B, H, W, 3) images
            as it expects them (preprocessed as the model needs).
        layer: layer to split at; default the last 4-D layer that allows it.
        output: "logits" or "embedding"; default guessed from the final
            layer's name ("embedding" -> embedding).
    """

    def __init__(self, model, layer=None, output=None):
        self.split = split_model(model, layer)
        self.output = output or _output_kind(model)
        self._gradcam_head = self.split.head
        if self.output == "embedding" and \
                isinstance(model.layers[-1], keras.layers.UnitNormalization):
            # Grad-CAM's e·stop_gradient(e) has zero gradient through an L2
            # normalisation: it explains the embedding before it.
            self._gradcam_head = split_model(model, self.split.layer, unnormalized=True).head
        if self.output not in ("logits", "embedding"):
            raise ValueError(f"output must be 'logits' or 'embedding', not {output!r}")
        self._forward = tf.function(self._forward_impl, reduce_retracing=True)
        self._l2caf = tf.function(self._l2caf_impl, reduce_retracing=True)
        self._l2caf_xla = tf.function(self._l2caf_impl, reduce_retracing=True,
                                      jit_compile=True)
        self._gradcam = tf.function(self._gradcam_impl, reduce_retracing=True)
        self._configs = {}

    @property
    def layer(self):
        return self.split.layer

    def _forward_impl(self, images):
        feature_maps = tf.cast(self.split.features(images, training=False), tf.float32)
        return feature_maps, self.split.head(feature_maps, training=False)

    def _l2caf_impl(self, feature_maps, targets, params, config):
        result = objective.solve_l2caf(self.split, feature_maps, targets, params, config)
        return (result.maps, result.iterations, result.losses,
                result.snapshots if config.snapshot_every else tf.zeros([0]))

    def _gradcam_impl(self, feature_maps, targets):
        return baselines.gradcam(self._gradcam_head, feature_maps, targets)

    def explain(self, images, method="l2caf", targets=None, **options):
        """Heatmaps for a batch of images; see `tfcaf.explain`."""
        if method not in METHODS:
            raise ValueError(f"unknown method '{method}'; choose one of {', '.join(METHODS)}")
        images = tf.convert_to_tensor(images, tf.float32)
        if len(images.shape) != 4:
            raise ValueError(f"images must be (B, H, W, C), got shape {tuple(images.shape)}")
        feature_maps, outputs = self._forward(images)
        class_based = method != "l2caf" and not (
            method == "gradcam" and self.output == "embedding")
        if class_based and self.output == "embedding":
            raise ValueError(
                f"method '{method}' needs class logits, but the model's output is an "
                "embedding; use 'l2caf' or 'gradcam'")
        if not class_based and targets is not None:
            raise ValueError(f"method '{method}' on this model takes no targets")
        target_matrix, squeeze = (None, True)
        if class_based:
            target_matrix, squeeze = _target_matrix(targets, outputs)
        result = self._run(method, feature_maps, target_matrix, options)
        return self._package(result, target_matrix, squeeze, images.shape[1:3], method)

    def _run(self, method, feature_maps, targets, options):
        """Raw maps (P, h, w) (+ L2-CAF extras), P = B or B·T problems."""
        if targets is not None:
            t = targets.shape[1]
            feature_maps = tf.repeat(feature_maps, t, axis=0)
            targets = tf.constant(targets.reshape(-1), tf.int32)
        if method == "cam":
            if self.split.dense is None:
                raise ValueError(
                    f"CAM needs a Dense(GlobalAveragePooling2D) head after layer "
                    f"'{self.layer}'; this head is different, use 'gradcam'")
            return (baselines.cam(feature_maps, self.split.dense, targets),)
        if method == "gradcam":
            return (self._gradcam(feature_maps, targets),)
        config = replace(SolverConfig(), **options)
        config.validate()
        # tf.function keys Python arguments by identity: equal configs must
        # be the same object, or every call would trace the solver again.
        config = self._configs.setdefault(config, config)
        compiled = objective.compiles_with_xla(self.split, config)
        solver = self._l2caf_xla if compiled else self._l2caf
        return solver(feature_maps, targets, self.initial_filters(feature_maps, config), config)

    @staticmethod
    def initial_filters(feature_maps, config):
        """Initial filter parameters for the (B, h, w, C) feature maps."""
        _, h, w, _ = feature_maps.shape
        return filters.initial_parameters(config.filter, tf.shape(feature_maps)[0], h, w,
                                          config.init, config.seed)

    def _package(self, result, targets, squeeze, size, method):
        maps = result[0]
        lead = (-1,) if squeeze else (-1, targets.shape[1])
        image_maps = heatmaps.to_image_size(maps, size)
        reshape = lambda x: np.reshape(x.numpy(), lead + tuple(x.shape[1:]))
        extras = {}
        if len(result) > 1:
            extras = dict(iterations=reshape(result[1]), losses=reshape(result[2]))
            if result[3].shape.rank == 4:
                extras["snapshots"] = reshape(result[3])
        return Explanation(
            heatmaps=reshape(image_maps), maps=reshape(maps),
            targets=None if targets is None else (targets[:, 0] if squeeze else targets),
            layer=self.layer, method=method, **extras)


def _target_matrix(targets, outputs):
    """Targets as a (B, T) int array, and whether the caller gave one per image.

    None means each image's top-1 class.
    """
    batch, num_classes = outputs.shape[0], outputs.shape[-1]
    if targets is None:
        return np.argmax(outputs.numpy(), axis=-1)[:, None].astype(np.int32), True
    array = np.asarray(targets)
    if array.ndim == 0:
        array = np.full((batch, 1), int(array))
        squeeze = True
    elif array.ndim == 1:
        array, squeeze = array[:, None], True
    else:
        squeeze = False
    if array.ndim != 2 or array.shape[0] != batch:
        raise ValueError(
            f"targets must be an int, (B,) or (B, T) with B={batch}; got shape "
            f"{np.asarray(targets).shape}")
    if not np.issubdtype(array.dtype, np.integer) or array.min() < 0 or \
            array.max() >= num_classes:
        raise ValueError(
            f"targets must be class ids in [0, {num_classes}); got {np.asarray(targets).tolist()}")
    return array.astype(np.int32), squeeze


_EXPLAINERS = weakref.WeakKeyDictionary()


def explain(model, images, method="l2caf", layer=None, targets=None, output=None,
            **options):
    """Where does `model` look in `images`?

    Args:
        model: Keras model (functional or Sequential, nesting allowed).
        images: (B, H, W, C) batch, as the model expects it.
        method: "l2caf" (class-oblivious), "l2caf_specific", "cam" or
            "gradcam".
        layer: layer to split at; default the last 4-D layer.
        targets: class ids for class-specific methods: an int, (B,), or
            (B, T) for several targets per image (solved independently);
            default each image's top-1 class.
        output: "logits" | "embedding"; default guessed (see `Explainer`).
        **options: `SolverConfig` fields for L2-CAF (filter, optimizer,
            learning_rate, max_iterations, tolerance, init, seed,
            snapshot_every, ...).

    Returns:
        An `Explanation`; `.heatmaps` is (B, H, W) in [0, 1].
    """
    per_model = _EXPLAINERS.setdefault(model, {})
    key = (layer, output)
    if key not in per_model:
        per_model[key] = Explainer(model, layer=layer, output=output)
    return per_model[key].explain(images, method=method, targets=targets, **options)
