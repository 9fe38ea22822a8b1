"""How long the four faithfulness metrics take on the digits test set:
deletion + insertion, Average Drop / Increase in Confidence and the pointing
game, for --images images × --methods heatmap sets, against two baselines
measured in the same run:

- one plain forward pass over the same images (the cost unit: the metrics
  need (2 · (S + 1) + 2) passes per image and method, S = H·W / step);
- the same deletion/insertion with one model call per step and image (the
  unbatched way), on --naive-images images, scaled to --images.

    .venv/bin/python bench/faithfulness.py [--images 1000] [--methods 4]
        [--batch-size 256] [--naive-images 4] [--data-dir DIR]

The model is the digits tiny_resnet classifier of flags/digits_adl.flags,
untrained (the cost does not depend on the weights); the heatmaps are
random, one set per method (the cost does not depend on the map either).
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def _load(count, data_dir, size=64):
    from tfcaf.data import load_dataset
    dataset = load_dataset("digits", data_dir, "test", image_size=(size, size))
    count = min(count, len(dataset))
    images, labels, boxes = [], [], []
    for x, y, b in dataset.evenly_spaced(count, 250):
        images.append(x.numpy())
        labels.append(y.numpy())
        boxes += list(b.numpy())
    return np.concatenate(images), np.concatenate(labels), boxes


def _timed(fn):
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def _naive_curves(model, images, heatmaps, labels, substrate, step):
    """Deletion and insertion with one model call per step and image."""
    from tfcaf.metrics import faithfulness as fm
    height, width = heatmaps.shape[1:]
    counts = fm.step_counts(height * width, step)
    ranks = fm.salience_ranks(heatmaps)
    blurred = fm.blurred(images, substrate)
    for i in range(len(images)):
        for start, end in ((images[i], substrate + 0 * images[i]), (blurred[i], images[i])):
            for count in counts:
                mixed = np.where((ranks[i] < count)[..., None], end, start)
                tf.nn.softmax(model(mixed[None]))[0, labels[i]].numpy()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--methods", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--naive-images", type=int, default=4)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()

    from tfcaf.metrics import faithfulness as fm
    from tfcaf.models import build_model
    images, labels, boxes = _load(args.images, args.data_dir)
    model = build_model("tiny_resnet", "adl", num_classes=10, image_size=64, seed=0)
    predict = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    substrate = fm.model_substrate(model)
    rng = np.random.default_rng(0)
    maps = [rng.random(images.shape[:3]) for _ in range(args.methods)]
    options = dict(substrate=substrate, batch_size=args.batch_size)
    step = images.shape[2]

    predict(images[:args.batch_size])  # trace once outside the clocks
    forward, _ = _timed(lambda: [predict(images[i:i + args.batch_size]).numpy()
                                 for i in range(0, len(images), args.batch_size)])
    timings = {}
    for name, run in (
            ("deletion+insertion", lambda m: fm.deletion_insertion(
                predict, images, m, labels, step=step, **options)),
            ("average_drop", lambda m: fm.average_drop_increase(
                predict, images, m, labels, **options)),
            ("pointing_game", lambda m: fm.pointing_game(m, boxes))):
        timings[name] = sum(_timed(lambda: run(m))[0] for m in maps)
    total = sum(timings.values())
    naive_count = min(args.naive_images, len(images))
    naive, _ = _timed(lambda: _naive_curves(model, images[:naive_count], maps[0][:naive_count],
                                            labels, substrate, step))
    naive_scaled = naive * len(images) * args.methods / naive_count
    steps = len(fm.step_counts(images.shape[1] * images.shape[2], step))
    print(json.dumps({
        "images": len(images), "methods": args.methods, "image_size": list(images.shape[1:3]),
        "steps_per_curve": steps, "seconds": {k: round(v, 2) for k, v in timings.items()},
        "total_seconds": round(total, 2),
        "forward_pass_seconds": round(forward, 3),
        "total_in_forward_passes": round(total / forward, 1),
        "model_passes_needed_per_image_and_method": 2 * steps + 2,
        "unbatched_deletion_insertion_seconds_scaled": round(naive_scaled, 1),
        "batched_speedup_over_unbatched": round(naive_scaled / timings["deletion+insertion"], 1),
        "cpu_cores": os.cpu_count()}, indent=2))


if __name__ == "__main__":
    main()
