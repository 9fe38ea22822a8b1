"""How much L2-CAF on a trained Vision Transformer depends on its random
initial filter: for each solver setting, two runs that differ only in
their seed, compared by the per-image Pearson correlation of their maps
and by how far apart their final objectives are.

    bin/train --flagfile=flags/digits_vit.flags --train_steps=3000 \
        --model_dir=runs/digits_vit3k
    .venv/bin/python bench/vit_seeds.py --model runs/digits_vit3k/model.keras \
        [--images 48] [--settings "" "restarts=16" "optimizer='adam'"]

Images: --images test-split digits, evenly spaced. Each --settings entry
is keyword arguments of `tfcaf.explain` ("" is the default solver).
Columns: the resolved optimizer and restarts; the median and minimum map
Pearson and the share of images below 0.9; the median final objective of
seed 0; the median and largest per-image |loss0 - loss1| / min(loss0,
loss1); the time of both runs.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import tfcaf  # noqa: E402
from tfcaf.applications import load_model  # noqa: E402
from tfcaf.data import load_dataset  # noqa: E402
from tfcaf.evaluation.seeds import pearson_per_image  # noqa: E402


def settings_of(text):
    """explain() keyword arguments of a "name=value, ..." string."""
    return eval(f"dict({text})", {"__builtins__": {"dict": dict}})


def row(model, images, options):
    """One table row: both seeds' runs with `options`, compared."""
    start = time.perf_counter()
    runs = [tfcaf.explain(model, images, method="l2caf", seed=seed, **options)
            for seed in (0, 1)]
    seconds = time.perf_counter() - start
    pearson = pearson_per_image(runs[0].maps, runs[1].maps)
    losses = [run.losses.astype(np.float64) for run in runs]
    gap = np.abs(losses[0] - losses[1]) / np.maximum(np.minimum(*losses), 1e-30)
    solver = runs[0].solver
    return (f"| {options or 'default'} | {solver['optimizer']} | {solver['restarts']} | "
            f"{np.median(pearson):.2f} | {pearson.min():.2f} | {np.mean(pearson < 0.9):.0%} | "
            f"{np.median(losses[0]):.3f} | {np.median(gap):.0%} | {gap.max():.0%} | "
            f"{seconds:.0f} s |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a trained .keras ViT classifier")
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--settings", nargs="+", default=["", "restarts=16", "optimizer='adam'"])
    args = parser.parse_args()
    model = load_model(args.model)
    size = model.input.shape[1]
    dataset = load_dataset("digits", split="test", image_size=size)
    images = np.concatenate([x.numpy() for x, _, _ in dataset.evenly_spaced(args.images,
                                                                             args.images)])
    print(f"{args.model}: {len(images)} test images, split at "
          f"{tfcaf.explain(model, images[:1], method='gradcam').layer}")
    print("| settings | optimizer | restarts | Pearson median | min | < 0.9 | objective "
          "median | objective gap median | max | time |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for text in args.settings:
        print(row(model, images, settings_of(text)), flush=True)


if __name__ == "__main__":
    main()
