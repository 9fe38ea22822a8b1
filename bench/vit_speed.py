"""L2-CAF's cost on a ViT-B/16-sized keras-hub classifier (random weights):
explain ÷ forward at the last block's input and at the middle block's
(the default), with the authors' Adam and with L-BFGS (its default 4
starts, each a row of the batch), against one forward
pass of the same batch measured in the same run.

    .venv/bin/python bench/vit_speed.py [--images 2] [--iterations 10]
        [--layers 12] [--size 224]

Each solve is capped at --iterations updates (the default solver runs up
to 1,000), so the table gives the cost of one update, "per update ÷
forward": only the blocks after the split run in the loop, the tokens
before it are computed once. Times are the median of 3 calls after a
warm-up call. Needs keras-hub (`pip install tfcaf[hub]`).
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from tfcaf.caf import Explainer  # noqa: E402
from tfcaf.models.hub import load_hub_model  # noqa: E402


def _seconds(function, repeats=3):
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    config = dict(image_shape=(args.size, args.size, 3), patch_size=16, num_layers=args.layers,
                  num_heads=12, hidden_dim=768, mlp_dim=3072)
    model = load_hub_model("ViTBackbone", weights=None, config=config, num_classes=1000)
    images = np.random.default_rng(0).uniform(0, 255, (args.images, args.size, args.size, 3))
    images = images.astype(np.float32)
    forward = Explainer(model).forward
    base = _seconds(lambda: forward(images))
    print(f"ViT {args.layers} blocks x 768, {args.size} px, {args.images} images: forward "
          f"{base * 1000:.0f} ms")
    layers = {"middle block's input (default)": None,
              "last block's input": f"transformer_block_{args.layers - 1}"}
    print("| split at | optimizer | explain ÷ forward | per update ÷ forward |")
    print("| --- | --- | --- | --- |")
    for where, layer in layers.items():
        explainer = Explainer(model, layer=layer)
        for optimizer in ("adam", "lbfgs"):
            options = dict(optimizer=optimizer, max_iterations=args.iterations)
            seconds = _seconds(lambda: explainer.explain(images, method="l2caf", **options))
            print(f"| {where} ({explainer.layer}) | {optimizer} | {seconds / base:.1f} | "
                  f"{seconds / base / args.iterations:.2f} |", flush=True)


if __name__ == "__main__":
    main()
