"""One builder for every binary: backbone + head from names."""

import keras

from tfcaf.models.acol import ACoLHead, ACoLLoss, ACoLModel
from tfcaf.models.backbones import backbone_spec, build_backbone, insert_adl
from tfcaf.models.layers import ClassToken
from tfcaf.models.weights import load_weights_file, random_weights
from tfcaf.errors import TfcafError

HEADS = ("classifier", "adl", "acol", "embedding")
_DEFAULT_IMAGE_SIZE = {"tiny_resnet": 96, "vit_tiny": 64}


def _image_size(backbone, image_size):
    size = image_size or _DEFAULT_IMAGE_SIZE.get(backbone, 224)
    size = (size, size) if isinstance(size, int) else tuple(size)
    if len(size) != 2 or min(size) < 1:
        raise TfcafError(f"image_size must be an int or (H, W), got {size}")
    return size


def _check_args(head, num_classes, embedding_dim):
    if head not in HEADS:
        raise TfcafError(
            f"unknown head '{head}'; choose one of {', '.join(HEADS)}")
    if head == "embedding":
        if not isinstance(embedding_dim, int) or embedding_dim < 1:
            raise TfcafError(
                f"embedding_dim must be a positive int, got {embedding_dim}")
    elif not isinstance(num_classes, int) or num_classes < 2:
        raise TfcafError(
            f"head '{head}' needs num_classes, an int >= 2; got "
            f"{num_classes}")


def _head_outputs(features, head, num_classes, embedding_dim,
                  normalize_embedding):
    """GAP -> Dense head on features (B, h, w, C); on a ViT's (B, N, C)
    tokens, class token -> Dense."""
    if len(features.shape) == 3:
        x = ClassToken(name="class_token")(features)
    else:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(features)
    if head != "embedding":
        return keras.layers.Dense(num_classes, name="logits")(x)
    if not normalize_embedding:
        return keras.layers.Dense(embedding_dim, name="embedding")(x)
    x = keras.layers.Dense(embedding_dim, name="embedding_dense")(x)
    return keras.layers.UnitNormalization(name="embedding")(x)


def build_model(backbone="tiny_resnet", head="classifier", num_classes=None,
                embedding_dim=128, normalize_embedding=True, image_size=None,
                weights=None, adl_positions=None, drop_rate=0.75, gamma=None,
                delta=0.6, acol_filters=1024, seed=None,
                backbone_options=None, name=None):
    """Builds a tfcaf model: raw RGB pixels -> backbone -> head.

    The model has one input, "images" (B, H, W, 3) float32 RGB in
    [0, 255] (preprocessing is inside, in the backbone's "preprocessing"
    layer), and one output:
      - "classifier": GAP -> Dense(num_classes) "logits" (B, K), no softmax;
      - "adl": the same, with `ADL` layers inserted in the backbone after
        `adl_positions`;
      - "acol": an `ACoLModel`, output branch A's logits (B, K);
      - "embedding": GAP -> Dense(embedding_dim) -> optional L2
        normalization, the last layer named "embedding" (B, D).
    The backbone is the nested model "backbone" (images -> (B, h, w, C);
    vit_tiny: (B, 1 + h·w, C) tokens, which the heads pool by their class
    token, "class_token", instead of GAP).

    Args:
        backbone: "tiny_resnet", "resnet50", "googlenet", "vgg16_gap" or
            "vit_tiny" (no "adl" or "acol" head).
        head: "classifier", "adl", "acol" or "embedding".
        num_classes: K, for every head except "embedding".
        embedding_dim: D of the embedding head (128 in the paper).
        normalize_embedding: L2-normalise the embedding (triplet loss: on;
            N-pair loss: off).
        image_size: int or (H, W); default 96 for tiny_resnet, 64 for
            vit_tiny, else 224.
        weights: None (random); "imagenet" (backbone only, resnet50 and
            vgg16_gap; the head starts random); or a path to a `.keras`,
            `.weights.h5` or `.h5` file holding the weights of this exact
            model (same backbone, head and sizes).
        adl_positions: layer names for ADL; default per backbone
            (`tfcaf.models.backbones.BACKBONES`).
        drop_rate: ADL drop rate.
        gamma: ADL threshold; default 0.8 for vgg16_gap, else 0.9.
        delta: ACoL erasing threshold.
        acol_filters: width of the ACoL branches' 3x3 convolutions.
        seed: int seed of the ADL random streams, or None.
        backbone_options: extra arguments of the backbone builder (e.g.
            `{"filters": (8, 16, 32)}` for tiny_resnet).
        name: model name (default f"{backbone}_{head}").

    Returns:
        A functional `keras.Model` (an `ACoLModel` for head "acol").

    Raises:
        TfcafError: unknown backbone or head, missing num_classes, ImageNet
            weights unavailable, or a weights file that does not match.
        FileNotFoundError: a weights path that does not exist.
    """
    _check_args(head, num_classes, embedding_dim)
    spec = backbone_spec(backbone)
    if head in ("adl", "acol") and spec.tokens:
        raise TfcafError(f"head '{head}' needs a convolutional backbone; '{backbone}' "
                         "ends in transformer tokens: use head 'classifier' or 'embedding'")
    if random_weights(weights):
        weights = None
    features_model = build_backbone(
        backbone, _image_size(backbone, image_size),
        weights="imagenet" if weights == "imagenet" else None,
        cam_conv=head != "acol", options=backbone_options)
    if head == "adl":
        features_model = insert_adl(
            features_model, adl_positions or spec.adl_positions, drop_rate,
            spec.adl_gamma if gamma is None else gamma, seed=seed)
    images = keras.Input(shape=features_model.input.shape[1:], name="images")
    features = features_model(images)
    name = name or f"{backbone}_{head}"
    if head == "acol":
        logits = ACoLHead(num_classes, delta, acol_filters, name="acol")(
            features)
        model = ACoLModel(images, logits, name=name)
    else:
        model = keras.Model(images, _head_outputs(
            features, head, num_classes, embedding_dim, normalize_embedding),
            name=name)
    if weights not in (None, "imagenet"):
        load_weights_file(model, weights)
    return model


def training_loss(head):
    """The Keras loss a model with this head trains with.

    Args:
        head: "classifier", "adl" or "acol".

    Returns:
        SparseCategoricalCrossentropy on logits for "classifier" and "adl";
        `ACoLLoss` (CE(A) + CE(B), ground-truth erasing in `fit`) for "acol".

    Raises:
        TfcafError: "embedding" (retrieval nets train with the metric
            learning losses of `tfcaf.losses`: triplet semi-hard with a
            normalized embedding, N-pair without) or an unknown head.
    """
    if head in ("classifier", "adl"):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if head == "acol":
        return ACoLLoss()
    if head == "embedding":
        raise TfcafError(
            "embedding models train with a metric learning loss from "
            "tfcaf.losses (triplet semi-hard with normalize_embedding=True, "
            "N-pair with normalize_embedding=False)")
    raise TfcafError(f"unknown head '{head}'; choose one of {', '.join(HEADS)}")
