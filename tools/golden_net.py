"""The small networks and inputs that attribution golden files are made on.

Every golden script (tools/make_*_golden.py) and every parity test builds
the same two networks from the same seeded numpy weights, in Keras here and
in PyTorch where the reference library needs it, so a reference library and
tfcaf see the same function of the same images:

    images (B, 32, 32, 3) in [0, 1]
      -> conv1: Conv 3x3, 8, 'same', ReLU -> MaxPool 2x2
      -> features: Conv 3x3, 16, 'same', ReLU        (B, 16, 16, 16): the layer explained
      -> head_conv: Conv 3x3, 16, 'same', ReLU -> GlobalAveragePooling
      -> hidden: Dense 12, ReLU
      -> classifier: Dense 5 "logits"  |  embedding: Dense 8 -> L2 normalisation

The head after `features` is non-linear (a convolution and a ReLU'd Dense),
so the gradient CAMs differ from each other (on a GAP -> Dense head
Grad-CAM, HiResCAM and XGradCAM coincide). Only numpy is imported at module
level; `keras_model` imports Keras.
"""

import json

import numpy as np

IMAGE_SIZE = 32
NUM_CLASSES = 5
EMBEDDING_DIM = 8
FEATURE_LAYER = "features"

# name -> (kernel shape, HWIO for convolutions, (in, out) for Dense)
_SHAPES = {
    "conv1": (3, 3, 3, 8),
    "features": (3, 3, 8, 16),
    "head_conv": (3, 3, 16, 16),
    "hidden": (16, 12),
    "logits": (12, NUM_CLASSES),
    "embedding": (12, EMBEDDING_DIM),
}


def make_weights(seed=0):
    """{layer: (kernel, bias)} float32, He-normal kernels and small biases,
    the same for every framework (kernels HWIO / (in, out), as Keras)."""
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in _SHAPES.items():
        fan_in = int(np.prod(shape[:-1]))
        kernel = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape).astype(np.float32)
        bias = rng.normal(0.0, 0.05, shape[-1]).astype(np.float32)
        weights[name] = (kernel, bias)
    return weights


def sample_images(seed=1, count=4):
    """(count, 32, 32, 3) float32 in [0, 1]: noise with one bright square
    per image at a seeded place (something for a map to find)."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.0, 0.4, (count, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32)
    for image in images:
        y, x = rng.integers(0, IMAGE_SIZE - 10, 2)
        image[y:y + 10, x:x + 10] = rng.uniform(0.7, 1.0, 3)
    return images


def keras_model(weights, kind="classifier"):
    """The network as a Keras functional model.

    Args:
        weights: `make_weights()`.
        kind: "classifier" (logits (B, 5)) or "embedding" (L2-normalised
            (B, 8)).
    """
    import keras
    layers = keras.layers
    images = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), name="images")
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(images)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name=FEATURE_LAYER)(x)
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="head_conv")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(12, activation="relu", name="hidden")(x)
    if kind == "classifier":
        outputs = layers.Dense(NUM_CLASSES, name="logits")(x)
    elif kind == "embedding":
        x = layers.Dense(EMBEDDING_DIM, name="embedding")(x)
        outputs = layers.UnitNormalization(name="l2_normalize")(x)
    else:
        raise ValueError(f"kind must be 'classifier' or 'embedding', got {kind!r}")
    model = keras.Model(images, outputs, name=f"golden_{kind}")
    for layer in model.layers:
        if layer.name in weights:
            layer.set_weights(list(weights[layer.name]))
    return model


def reference_run():
    """What every golden script starts from: the two Keras networks, the
    sample images (seed 1), the reference images (seed 2), and the networks'
    outputs on them.

    Returns:
        dict: models {"classifier", "embedding"}, images, reference_images
        (4, 32, 32, 3), logits (4, 5), embeddings (4, 8), references (4, 8)
        (the reference images' embeddings) and top1 (4,) class ids.
    """
    weights = make_weights()
    models = {kind: keras_model(weights, kind) for kind in ("classifier", "embedding")}
    images, reference_images = sample_images(seed=1), sample_images(seed=2)
    logits = models["classifier"](images).numpy()
    return dict(models=models, images=images, reference_images=reference_images,
                logits=logits, embeddings=models["embedding"](images).numpy(),
                references=models["embedding"](reference_images).numpy(),
                top1=logits.argmax(axis=1))


def save(out, meta, info, arrays):
    """Writes a golden file: `meta` (list of case dicts) and `info` (dict)
    as JSON strings beside the named `arrays`, compressed; returns its size
    in KiB."""
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, meta=np.array(json.dumps(meta)), info=np.array(json.dumps(info)),
                        **arrays)
    return out.stat().st_size / 1024
