"""Backbones, weakly supervised localization layers (ADL, ACoL) and
classification / embedding heads; `build_model` assembles them by name.

Every model takes raw RGB pixels, float32 in [0, 255], shape (B, H, W, 3),
with the backbone's preprocessing inside, and has one output: logits
(B, K) without softmax, or an embedding (B, D) from a layer named
"embedding".
"""

from tfcaf.models.acol import (ACoLHead, ACoLLoss, ACoLModel,
                               acol_localization_map, erase_features)
from tfcaf.models.backbones import (BACKBONES, build_backbone, insert_adl,
                                    tiny_resnet, with_preprocessing)
from tfcaf.models.builder import HEADS, build_model, training_loss
from tfcaf.models.googlenet import googlenet
from tfcaf.models.hub_layers import FirstOutput, RotaryBlock, TokenCount
from tfcaf.models.layers import ADL, ImagePreprocessing, LocalResponseNormalization
from tfcaf.models.weights import load_weights_file

__all__ = [
    "ACoLHead", "ACoLLoss", "ACoLModel", "ADL", "BACKBONES", "FirstOutput", "HEADS",
    "ImagePreprocessing", "LocalResponseNormalization", "RotaryBlock", "TokenCount",
    "acol_localization_map", "build_backbone", "build_model",
    "erase_features", "googlenet", "insert_adl", "load_weights_file",
    "tiny_resnet", "training_loss", "with_preprocessing",
]
