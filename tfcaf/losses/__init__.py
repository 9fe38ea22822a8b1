"""Metric-learning losses with tensorflow-addons 0.23 semantics.

The functional losses (`triplet`, `npairs`, `distances`) are pure
TensorFlow; the Keras `Loss` classes live in `keras_losses`.
"""

from tfcaf.losses.distances import angular_distance
from tfcaf.losses.distances import pairwise_distance
from tfcaf.losses.keras_losses import NpairsEmbeddingLoss
from tfcaf.losses.keras_losses import NpairsLoss
from tfcaf.losses.keras_losses import NpairsMultilabelLoss
from tfcaf.losses.keras_losses import TripletSemiHardLoss
from tfcaf.losses.npairs import npairs_embedding_loss
from tfcaf.losses.npairs import npairs_loss
from tfcaf.losses.npairs import npairs_multilabel_loss
from tfcaf.losses.triplet import triplet_semihard_loss

__all__ = [
    "NpairsEmbeddingLoss",
    "NpairsLoss",
    "NpairsMultilabelLoss",
    "TripletSemiHardLoss",
    "angular_distance",
    "npairs_embedding_loss",
    "npairs_loss",
    "npairs_multilabel_loss",
    "pairwise_distance",
    "triplet_semihard_loss",
]
