"""Input pipeline throughput vs a model's training step, on one machine.

    .venv/bin/python bench/input_pipeline.py [--dataset digits]
        [--data_dir DIR] [--split train] [--backbone tiny_resnet]
        [--batch 64] [--steps 20] [--no-augment]

Three rates, in images per second:
  pipeline   bin/train's pipeline alone (`tfcaf.training.inputs`: sampler,
             decode, augment, batch), drained as fast as it goes;
  step       the model's training step (`model.train_step`, as bin/train
             runs it) alone, on one batch held in memory;
  fed        the training step fed by the pipeline.
The pipeline is not the bottleneck when `pipeline` is well above `step`
and `fed` is close to `step`. On a CPU-only machine the two compete for the
same cores, so `fed` is below both.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfcaf.data import load_dataset  # noqa: E402
from tfcaf.models import build_model  # noqa: E402
from tfcaf.training import TrainConfig  # noqa: E402
from tfcaf.training.inputs import training_batches  # noqa: E402


def rate(batches, batch_size, steps, warmup=5):
    """Images per second over `steps` items of the iterator `batches`, after
    `warmup` untimed ones (tracing, autotuning, filling buffers)."""
    for _ in range(warmup):
        next(batches)
    start = time.perf_counter()
    for _ in range(steps):
        last = next(batches)
    # Wait for asynchronous device work before reading the clock.
    tf.nest.map_structure(lambda t: t.numpy(), last)
    return steps * batch_size / (time.perf_counter() - start)


def train_step(model):
    """bin/train's step: the compiled model's own `train_step`."""
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return tf.function(lambda images, labels: model.train_step((images, labels))["loss"])


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--split", default="train")
    parser.add_argument("--backbone", default="tiny_resnet")
    parser.add_argument("--image_size", type=int, default=None)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--no-augment", dest="augment", action="store_false")
    args = parser.parse_args()

    data = load_dataset(args.dataset, args.data_dir, args.split,
                        image_size=args.image_size)
    config = TrainConfig(dataset=args.dataset, batch_size=args.batch, augment=args.augment,
                         train_steps=10 ** 9)
    pipeline = training_batches(data, config, start_step=0)
    images_per_s = rate(iter(pipeline), args.batch, args.steps)

    model = build_model(args.backbone, "classifier",
                        num_classes=data.num_classes,
                        image_size=data.image_size, seed=0)
    step = train_step(model)
    images, labels = next(iter(pipeline))
    held = iter(lambda: step(images, labels), None)
    step_per_s = rate(held, args.batch, args.steps)
    fed = (step(x, y) for x, y in pipeline)
    fed_per_s = rate(fed, args.batch, args.steps)

    device = "GPU" if tf.config.list_physical_devices("GPU") else \
        f"CPU ({os.cpu_count()} cores)"
    print(f"{args.dataset}/{args.split} {data.image_size} batch {args.batch}, "
          f"augment {args.augment}, {args.backbone}, {device}")
    print(f"  pipeline   {images_per_s:8.0f} images/s")
    print(f"  step       {step_per_s:8.0f} images/s")
    print(f"  fed        {fed_per_s:8.0f} images/s")
    print(f"  pipeline / step = {images_per_s / step_per_s:.1f}")


if __name__ == "__main__":
    main()
