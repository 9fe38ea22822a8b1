"""What every metric of the registry costs on the digits test set, per
1,000 images × one heatmap method, with its registry defaults (or
--options), against baselines measured in the same run:

- one plain forward pass over the same images (the cost unit);
- for each metric that runs the model, the same metric with one model call
  per perturbed image (the unbatched way), on --naive-images images,
  scaled: the speed-up of batching.

    .venv/bin/python bench/faithfulness.py [--images 200] [--batch-size 256]
        [--naive-images 2] [--metrics deletion,road,...] [--data-dir DIR]
        [--options '{"mufidelity": {"nb_samples": 50}}']

The model is the digits tiny_resnet classifier of flags/digits_adl.flags,
untrained (the cost does not depend on the weights); the heatmaps are
random (nor on the map); stability re-explains with Grad-CAM, whose own
cost it includes.
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
    batches = list(dataset.evenly_spaced(count, 250))
    masks = dataset.gt_masks(dataset.evenly_spaced_indices(count))
    return tuple(np.concatenate([b[k].numpy() for b in batches]) for k in range(3)) + (masks,)


def _batch(images, labels, boxes, masks, heatmaps, predict, substrate, explain, batch_size):
    from tfcaf.metrics.registry import MetricBatch
    return MetricBatch(images=images, targets=labels, boxes=boxes, masks=masks,
                       heatmaps=heatmaps, maps=heatmaps, predict=predict, substrate=substrate,
                       embedding=False, explain=explain, batch_size=batch_size, first_image=0,
                       image_size=images.shape[1:3])


def _seconds(metric, batch, options):
    from tfcaf.metrics import registry
    function = registry.load(metric.batch_function or metric.function)
    return _seconds_of(lambda: function(**metric.arguments(batch, options, function)))


def main():
    from tfcaf.evaluation import KerasAdapter
    from tfcaf.metrics import faithfulness as fm
    from tfcaf.metrics import registry
    from tfcaf.models import build_model
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--naive-images", type=int, default=2)
    parser.add_argument("--metrics", default=",".join(registry.names(scope="maps")))
    parser.add_argument("--options", default="{}", help="JSON {metric: {option: value}}")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    images, labels, boxes, masks = _load(args.images, args.data_dir)
    model = build_model("tiny_resnet", "adl", num_classes=10, image_size=64, seed=0)
    predict = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    adapter = KerasAdapter(model)

    def one_by_one(batch):
        return tf.concat([predict(batch[i:i + 1]) for i in range(len(batch))], 0)

    def explain(x, t):
        return adapter.maps(x, t, "gradcam")[1]
    substrate = fm.model_substrate(model)
    heatmaps = np.random.default_rng(0).random(images.shape[:3]).astype(np.float32)
    predict(images[:args.batch_size])  # traced outside the clocks
    forward = min(_seconds_of(lambda: [predict(images[i:i + args.batch_size]).numpy()
                                       for i in range(0, len(images), args.batch_size)])
                  for _ in range(2))
    given = json.loads(args.options)
    rows, scale = {}, 1000 / len(images)
    for name in args.metrics.split(","):
        metric = registry.metric(name)
        options = metric.resolve_options(given=given.get(name))
        seconds = _seconds(metric, _batch(images, labels, boxes, masks, heatmaps, predict,
                                          substrate, explain, args.batch_size), options)
        row = {"seconds_per_1000_images": round(seconds * scale, 1),
               "in_forward_passes": round(seconds / forward, 1)}
        if "scores" in metric.needs:
            n = min(args.naive_images, len(images))
            naive = _seconds(metric, _batch(images[:n], labels[:n], boxes[:n], masks[:n],
                                            heatmaps[:n], one_by_one, substrate, explain, 1),
                             options) * len(images) / n
            row["batched_speedup_over_one_call_per_image"] = round(naive / seconds, 1)
        rows[name] = row
        print(name, row, flush=True)
    print(json.dumps({"images": len(images), "image_size": list(images.shape[1:3]),
                      "forward_pass_seconds": round(forward, 3), "options": given,
                      "metrics": rows, "cpu_cores": os.cpu_count()}, indent=2))


def _seconds_of(fn):
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
