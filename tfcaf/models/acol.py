"""ACoL, adversarial complementary learning (Zhang et al., CVPR 2018;
docs/method.md §3): two classifier branches on the same features, the
second one seeing the features with the first one's most discriminative
positions erased.

The model built around `ACoLHead` has one input (images) and one output
(branch A's logits, the classification output of the original code), so the
L2-CAF engine can split it. Training needs the labels inside the forward
pass (erasing uses the ground-truth class), which `ACoLModel.train_step`
provides; the fused localization map is read with `acol_localization_map`.
"""

import keras
import tensorflow as tf
from keras import ops

from tfcaf.errors import TfcafError

BACKBONE_LAYER = "backbone"
HEAD_LAYER = "acol"


def minmax_normalize(maps):
    """Scales each map to [0, 1] by its own min and max.

    Args:
        maps: (B, h, w).

    Returns:
        (B, h, w) float32; a constant map becomes all zeros.
    """
    # float32: the range of a float16 map may round to zero.
    maps = ops.cast(maps, "float32")
    low = ops.min(maps, axis=(1, 2), keepdims=True)
    high = ops.max(maps, axis=(1, 2), keepdims=True)
    return (maps - low) / ops.maximum(high - low, 1e-12)


def erase_features(features, class_map, delta):
    """Zeroes the feature positions where the normalized class map is >= delta.

    Args:
        features: (B, h, w, C).
        class_map: (B, h, w), one class's map; min-max normalized here.
        delta: erasing threshold in [0, 1].

    Returns:
        (B, h, w, C).
    """
    keep = minmax_normalize(class_map) < delta
    return features * ops.cast(keep, features.dtype)[..., None]


def _select_class(maps, classes):
    """maps (B, h, w, K), classes (B,) int -> (B, h, w)."""
    one_hot = ops.one_hot(classes, ops.shape(maps)[-1], dtype=maps.dtype)
    return ops.sum(maps * one_hot[:, None, None, :], axis=-1)


@keras.saving.register_keras_serializable(package="tfcaf")
class ACoLHead(keras.layers.Layer):
    """The two ACoL classifier branches.

    Each branch is conv3x3(filters)-ReLU-conv3x3(filters)-ReLU-
    conv1x1(num_classes), giving class maps (B, h, w, K); its logits are
    their spatial mean. Branch B runs on the features erased where branch
    A's map of the chosen class (ground truth when labels are given, else
    A's prediction), min-max normalized, is >= `delta`.

    `call` returns branch A's logits (B, K), the classification output.
    `branch_logits`, `class_maps` and `localization_map` expose the rest.

    Args:
        num_classes: K.
        delta: erasing threshold (0.6 in the paper).
        filters: width of the two 3x3 convolutions of each branch (1024).
        **kwargs: standard `keras.layers.Layer` arguments.

    Input shape: (B, h, w, C). Output shape: (B, K).
    """

    def __init__(self, num_classes, delta=0.6, filters=1024, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= delta <= 1.0:
            raise TfcafError(
                f"layer '{self.name}': delta must be in [0, 1], got {delta}")
        self.num_classes, self.delta, self.filters = num_classes, delta, filters
        self.branch_a = self._branch("a")
        self.branch_b = self._branch("b")

    def _branch(self, tag):
        conv = keras.layers.Conv2D
        return [conv(self.filters, 3, padding="same", activation="relu",
                     name=f"branch_{tag}_conv1"),
                conv(self.filters, 3, padding="same", activation="relu",
                     name=f"branch_{tag}_conv2"),
                conv(self.num_classes, 1, name=f"branch_{tag}_classes")]

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise TfcafError(
                f"layer '{self.name}' (ACoLHead) expects a 4-D (B, h, w, C) "
                f"feature map, got shape {tuple(input_shape)}")
        for branch in (self.branch_a, self.branch_b):
            shape = tuple(input_shape)
            for conv in branch:
                conv.build(shape)
                shape = conv.compute_output_shape(shape)

    @staticmethod
    def _run(branch, x):
        for conv in branch:
            x = conv(x)
        return x

    def call(self, features):
        return ops.mean(self._run(self.branch_a, features), axis=(1, 2))

    def class_maps(self, features, labels=None):
        """Both branches' class maps.

        Args:
            features: (B, h, w, C).
            labels: (B,) or (B, 1) int class used for erasing, or None for
                branch A's predicted class.

        Returns:
            (maps_a, maps_b, classes): maps (B, h, w, K) and the classes
            used for erasing, (B,) int32.
        """
        maps_a = self._run(self.branch_a, features)
        if labels is None:
            classes = ops.argmax(ops.mean(maps_a, axis=(1, 2)), axis=-1)
        else:
            classes = ops.reshape(labels, (-1,))
        classes = ops.cast(classes, "int32")
        erased = erase_features(features, _select_class(maps_a, classes),
                                self.delta)
        return maps_a, self._run(self.branch_b, erased), classes

    def branch_logits(self, features, labels=None):
        """(B, 2, K): logits of branch A (index 0) and branch B (index 1)."""
        maps_a, maps_b, _ = self.class_maps(features, labels)
        return ops.stack([ops.mean(maps_a, axis=(1, 2)),
                          ops.mean(maps_b, axis=(1, 2))], axis=1)

    def localization_map(self, features, labels=None):
        """Fused map (B, h, w): element-wise max of both branches' min-max
        normalized maps of the erasing class (labels, or A's prediction)."""
        maps_a, maps_b, classes = self.class_maps(features, labels)
        return ops.maximum(
            minmax_normalize(_select_class(maps_a, classes)),
            minmax_normalize(_select_class(maps_b, classes)))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "delta": self.delta, "filters": self.filters}


@keras.saving.register_keras_serializable(package="tfcaf")
class ACoLLoss(keras.losses.Loss):
    """CE(A) + CE(B): the sum of both branches' sparse cross-entropies.

    Args:
        name: loss name.
        **kwargs: standard `keras.losses.Loss` arguments (reduction, dtype).

    y_true: (B,) or (B, 1) int labels. y_pred: (B, 2, K) branch logits, as
    produced by `ACoLHead.branch_logits` inside `ACoLModel`'s train and test
    steps.
    """

    def __init__(self, name="acol_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return ops.sum(branch_cross_entropy(y_true, y_pred), axis=1)


def branch_cross_entropy(labels, branches):
    """Per-example cross-entropy of each ACoL branch.

    Args:
        labels: (B,) or (B, 1) int class ids.
        branches: (B, 2, K) logits of branches A and B.

    Returns:
        (B, 2): CE of branch A (column 0) and branch B (column 1).
    """
    if len(branches.shape) != 3 or branches.shape[1] != 2:
        raise TfcafError(
            "ACoLLoss expects the (B, 2, K) logits of both ACoL branches, "
            f"got shape {tuple(branches.shape)}; compile ACoL models with "
            "tfcaf.models.training_loss('acol') and train them with fit or bin/train")
    labels = ops.reshape(labels, (-1,))
    return ops.stack([keras.losses.sparse_categorical_crossentropy(
        labels, branches[:, i], from_logits=True) for i in (0, 1)], axis=1)


@keras.saving.register_keras_serializable(package="tfcaf")
class ACoLModel(keras.Model):
    """Functional model images -> backbone -> ACoLHead -> branch A logits,
    whose train and test steps run both branches.

    Built by `tfcaf.models.build_model(..., head="acol")`: a functional
    model whose layers include the sub-model named "backbone" (images
    (B, H, W, 3) -> features (B, h, w, C)) and the `ACoLHead` named "acol".
    `fit` erases with the ground-truth class, `evaluate` with the predicted
    one, both minimising `ACoLLoss` on the (B, 2, K) branch logits; the
    compiled metrics see branch A's logits (B, K), i.e. the model output.
    Besides "loss" (CE(A) + CE(B)), both steps report each branch's mean
    cross-entropy as the metrics "loss_a" and "loss_b". `bin/train` trains
    through `train_step` too, so there is one ACoL training path.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.branch_loss_trackers = [keras.metrics.Mean(name=f"loss_{tag}")
                                     for tag in ("a", "b")]
        layers = {layer.name: layer for layer in self.layers}
        if not isinstance(layers.get(HEAD_LAYER), ACoLHead) or \
                BACKBONE_LAYER not in layers:
            raise TfcafError(
                f"ACoLModel '{self.name}' needs a layer '{BACKBONE_LAYER}' "
                f"and an ACoLHead named '{HEAD_LAYER}'; it has "
                f"{', '.join(layers)}")

    def compile(self, optimizer="rmsprop", loss=None, **kwargs):
        """`keras.Model.compile`; `loss` defaults to, and must be, ACoLLoss."""
        loss = ACoLLoss() if loss is None else loss
        if not isinstance(loss, ACoLLoss):
            raise TfcafError(
                f"ACoLModel '{self.name}' trains with ACoLLoss (CE(A) + "
                f"CE(B)); got loss {loss!r}")
        super().compile(optimizer=optimizer, loss=loss, **kwargs)

    def class_activation_maps(self, images, classes):
        """What CAM means for an ACoL model (docs/method.md §3): the fused
        branch maps (B, h, w) in [0, 1] of `classes` (B,) int for raw RGB
        pixels (B, H, W, 3); tfcaf's "cam" method calls this."""
        return acol_localization_map(self, images, classes)

    def branch_logits(self, images, labels=None, training=False):
        """(B, 2, K) logits of branches A and B, erasing with `labels`
        ((B,) int) or, when None, with branch A's predicted class."""
        features = self.get_layer(BACKBONE_LAYER)(images, training=training)
        return self.get_layer(HEAD_LAYER).branch_logits(features, labels)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            branches = self.branch_logits(x, y, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=branches,
                                     sample_weight=sample_weight)
            scaled = self.optimizer.scale_loss(loss)
        weights = self.trainable_weights
        self.optimizer.apply_gradients(
            zip(tape.gradient(scaled, weights), weights))
        return self._metrics_after(x, y, branches, loss, sample_weight)

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        branches = self.branch_logits(x, training=False)
        loss = self.compute_loss(x=x, y=y, y_pred=branches,
                                 sample_weight=sample_weight, training=False)
        return self._metrics_after(x, y, branches, loss, sample_weight)

    def _metrics_after(self, x, y, branches, loss, sample_weight):
        # Keras' losses divide by the replica count under tf.distribute so
        # that gradients sum right; the reported loss must not be divided.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss * replicas,
                                    sample_weight=ops.shape(x)[0])
        per_branch = ops.mean(branch_cross_entropy(y, branches), axis=0)
        for i, tracker in enumerate(self.branch_loss_trackers):
            tracker.update_state(per_branch[i], sample_weight=ops.shape(x)[0])
        return self.compute_metrics(x, y, branches[:, 0], sample_weight)


def acol_localization_map(model, images, labels=None):
    """The ACoL fused localization map of `images`.

    Args:
        model: an `ACoLModel` (as built by `build_model(head="acol")`).
        images: raw RGB pixels (B, H, W, 3) in [0, 255].
        labels: (B,) int class whose map is fused (and used for erasing), or
            None for the predicted class, as at inference.

    Returns:
        (B, h, w) tensor in [0, 1]: max of the two branches' min-max
        normalized class maps, at the backbone's feature resolution.
    """
    if not isinstance(model, ACoLModel):
        raise TfcafError(
            f"model '{getattr(model, 'name', model)}' is not an ACoLModel; "
            "build it with build_model(head='acol')")
    features = model.get_layer(BACKBONE_LAYER)(images, training=False)
    return model.get_layer(HEAD_LAYER).localization_map(features, labels)
