"""Where the filter goes in a Vision Transformer: L2-CAF, Grad-CAM and
HiResCAM split at each block's input of a small keras-hub ViT classifier
(class token) trained here on the digits, scored by MaxBoxAcc, deletion
and insertion on the test split.

    .venv/bin/python bench/vit_placement.py [--epochs 12] [--images 200]
        [--cache bench_out/vit] [--methods l2caf,gradcam,hirescam]

The network (trained on first use, cached under --cache): keras-hub
ViTBackbone at 64 px, 8 px patches (an 8 x 8 grid), 4 blocks of width 64,
4 heads, class token; Dense logits over the 10 digits; AdamW 1e-3,
batch 64, --epochs epochs with the digits' augmentation. Needs keras-hub
(`pip install tfcaf[hub]`).
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tfcaf.applications import load_model  # noqa: E402
from tfcaf.data import load_dataset  # noqa: E402
from tfcaf.evaluation import EvalConfig, KerasAdapter, evaluate  # noqa: E402
from tfcaf.models.hub import load_hub_model  # noqa: E402

SIZE = 64
CONFIG = dict(image_shape=(SIZE, SIZE, 3), patch_size=8, num_layers=4, num_heads=4,
              hidden_dim=64, mlp_dim=128)
METRICS = ("maxboxacc", "deletion", "insertion")
# metrics.json keys of the table: MaxBoxAcc (v2: mean over IoU 0.3/0.5/0.7), the AUCs.
COLUMNS = ("maxboxacc_v2", "deletion_auc", "insertion_auc")


def trained_vit(cache, epochs):
    """The digits ViT classifier, trained on first use and cached."""
    path = os.path.join(cache, "vit_digits.keras")
    if os.path.isfile(path):
        return load_model(path)
    keras.utils.set_random_seed(0)
    model = load_hub_model("ViTBackbone", weights=None, config=CONFIG, num_classes=10)
    train = load_dataset("digits", split="train", image_size=SIZE)
    val = load_dataset("digits", split="val", image_size=SIZE)
    model.compile(keras.optimizers.AdamW(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    to_xy = lambda images, labels, boxes: (images, labels)  # noqa: E731
    start = time.time()
    model.fit(train.pipeline(64, shuffle=True, augment=True).map(to_xy),
              validation_data=val.pipeline(128).map(to_xy), epochs=epochs, verbose=2)
    print(f"trained in {time.time() - start:.0f} s")
    os.makedirs(cache, exist_ok=True)
    model.save(path + ".tmp.keras")
    os.replace(path + ".tmp.keras", path)
    return model


def block_inputs(model):
    """(layer name, what it is) of each block's input, first to last."""
    names = [layer.name for layer in model.layers]
    blocks = [n for n in names if n.startswith("transformer_block_")]
    inputs = [names[names.index(blocks[0]) - 1]] + blocks[:-1]
    return [(name, f"input of block {i + 1} of {len(blocks)}") for i, name in enumerate(inputs)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--cache", default="bench_out/vit")
    parser.add_argument("--methods", default="l2caf,gradcam,hirescam")
    args = parser.parse_args()
    model = trained_vit(args.cache, args.epochs)
    test = load_dataset("digits", split="test", image_size=SIZE)
    methods = tuple(args.methods.split(","))
    rows = []
    for layer, where in block_inputs(model):
        out_dir = os.path.join(args.cache, f"eval_{layer}")
        config = EvalConfig(metrics=METRICS, methods=methods, max_images=args.images,
                            batch_size=50)
        start = time.time()
        summary = evaluate(KerasAdapter(model, layer=layer), test, out_dir, config,
                           overwrite=True)
        print(f"{layer}: {time.time() - start:.0f} s", flush=True)
        for method in methods:
            values = summary["methods"].get(method, {})
            rows.append((where, layer, method, values))
    print(f"\n{_accuracy(model, test):.1%} top-1 on the whole test split")
    print("| filter at | layer | method | MaxBoxAcc v2 | deletion AUC ↓ | insertion AUC ↑ |")
    print("| --- | --- | --- | --- | --- | --- |")
    for where, layer, method, values in rows:
        cells = [_cell(values.get(key)) for key in COLUMNS]
        print(f"| {where} | {layer} | {method} | " + " | ".join(cells) + " |")
    with open(os.path.join(args.cache, "placement.json"), "w") as f:
        json.dump([dict(where=w, layer=l, method=m, values=v) for w, l, m, v in rows], f,
                  indent=1, default=float)


def _cell(value):
    return "–" if value is None or np.isnan(value) else f"{100 * value:.1f}"


def _accuracy(model, dataset):
    correct = total = 0
    for images, labels, _ in dataset.pipeline(128):
        correct += int(np.sum(np.argmax(model(images), -1) == labels.numpy()))
        total += len(labels)
    return correct / total


if __name__ == "__main__":
    main()
