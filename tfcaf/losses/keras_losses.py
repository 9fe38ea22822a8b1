"""Keras `Loss` wrappers of the metric-learning losses.

All three are batch-level losses: they return one scalar per batch, so
per-example `sample_weight` has no meaning for them and is rejected rather
than silently rescaling the loss.
"""

import keras

from tfcaf.losses import npairs
from tfcaf.losses import triplet


class _BatchLoss(keras.losses.Loss):
    """A loss whose value couples all examples of the batch."""

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise ValueError(
                f"{type(self).__name__} is computed over the whole batch and "
                "does not accept sample_weight (or class_weight)")
        return super().__call__(y_true, y_pred)


@keras.saving.register_keras_serializable(package="tfcaf")
class TripletSemiHardLoss(_BatchLoss):
    """Semi-hard triplet loss; y_true labels (B,), y_pred embeddings (B, D).

    Args:
        margin: float margin.
        distance_metric: "L2", "squared-L2", "angular", or a callable
            `(B, D) -> (B, B)`; a callable is serialised with
            `keras.saving.serialize_keras_object`, so it must be registered
            to survive a save/load round trip.
    """

    def __init__(self, margin=1.0, distance_metric="L2",
                 name="triplet_semihard_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        if isinstance(distance_metric, dict):
            distance_metric = keras.saving.deserialize_keras_object(distance_metric)
        self.margin = float(margin)
        self.distance_metric = distance_metric

    def call(self, y_true, y_pred):
        return triplet.triplet_semihard_loss(
            y_true, y_pred, margin=self.margin,
            distance_metric=self.distance_metric)

    def get_config(self):
        metric = self.distance_metric
        if callable(metric):
            metric = keras.saving.serialize_keras_object(metric)
        return {**super().get_config(), "margin": self.margin,
                "distance_metric": metric}


@keras.saving.register_keras_serializable(package="tfcaf")
class NpairsLoss(_BatchLoss):
    """N-pair loss; y_true labels (B,), y_pred similarity (B, B)."""

    def __init__(self, name="npairs_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return npairs.npairs_loss(y_true, y_pred)


@keras.saving.register_keras_serializable(package="tfcaf")
class NpairsMultilabelLoss(_BatchLoss):
    """Multilabel N-pair loss; y_true multi-hot (B, C), y_pred (B, B)."""

    def __init__(self, name="npairs_multilabel_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return npairs.npairs_multilabel_loss(y_true, y_pred)


@keras.saving.register_keras_serializable(package="tfcaf")
class NpairsEmbeddingLoss(_BatchLoss):
    """N-pair loss on the embeddings of a batch of (anchor, positive) pairs.

    y_true: labels (2N,) laid out (a_0, p_0, a_1, p_1, ...), as produced by
    `tfcaf.data.samplers.npair_batches`; y_pred: embeddings (2N, D), not
    normalised. The similarity matrix anchors · positivesᵀ is formed here.

    Args:
        l2_reg: weight of the TF-slim embedding regulariser; 0 (off) as in
            tfa.
    """

    def __init__(self, l2_reg=0.0, name="npairs_embedding_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.l2_reg = float(l2_reg)

    def call(self, y_true, y_pred):
        return npairs.npairs_embedding_loss(y_true, y_pred, l2_reg=self.l2_reg)

    def get_config(self):
        return {**super().get_config(), "l2_reg": self.l2_reg}
