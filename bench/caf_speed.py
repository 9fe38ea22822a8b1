"""L2-CAF speed: the whole `explain` call as a multiple of the forward pass,
for the authors' solver settings and the default (optimizer="auto": the
authors' Adam in closed form, L-BFGS from 4 starts on other heads),
measured in one run.

    .venv/bin/python bench/caf_speed.py [--cases vgg16,resnet50_conv4,resnet50_last]
        [--batch 8] [--size 224] [--repeats 1] [--image_seed 0] [--variants] [--per_image_loop]

Models use weights=None (seeded) on seeded uniform images in [0, 255]
(`--image_seed`). Each
configuration gets one identical untimed warm-up call first (tracing is not
timed), then the best of `--repeats` calls, divided by the best of as many
forward passes timed right after it (the machine may be shared). Next to each configuration the
table prints its iterations (head evaluations, averaged over the batch), its
final objective (averaged), the mean and worst per-image relative change
of the objective against the first row (the authors' settings; positive:
worse)
and the smallest per-image Pearson correlation of its maps with that row's.
`--variants` adds L-BFGS without its smoothing phase, the authors' settings
from another random filter (how far their own result moves), L-BFGS after
50 Adam iterations and re-running the whole head instead of folding its
linear first layers;
`--per_image_loop` adds the authors' own style on the last case: one image
at a time, one head pass per iteration, driven from Python.
"""

import argparse
import dataclasses
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfcaf.caf import Explainer, SolverConfig  # noqa: E402
from tfcaf.evaluation.seeds import pearson_per_image  # noqa: E402

CASES = {
    "vgg16": ("VGG16", "block5_pool"),
    "resnet50_conv4": ("ResNet50", "conv4_block6_out"),
    "resnet50_last": ("ResNet50", "conv5_block3_out"),
}

CONFIGS = {  # the first is the reference of the Pearson and Δ columns
    "authors' settings (Adam), folded": SolverConfig.authors(),
    "default (optimizer='auto')": SolverConfig(),
}

VARIANTS = {
    "L-BFGS, 1 start, 1 smoothing stage (before 0.3)": SolverConfig(
        optimizer="lbfgs", restarts=1, smoothing_stages=1),
    "L-BFGS, no smoothing phase (smoothing=0)": SolverConfig(optimizer="lbfgs", smoothing=0.0),
    "authors' settings, seed 1 (their own spread)": SolverConfig.authors(seed=1),
    "L-BFGS after 50 Adam iterations": SolverConfig(optimizer="lbfgs", warmup_iterations=50),
    "authors' settings, head re-run (fold=False)": SolverConfig.authors(fold=False),
    "L-BFGS, head re-run (fold=False)": SolverConfig(optimizer="lbfgs", fold=False),
}


def best_of(fn, repeats):
    """(fastest of `repeats` timed calls, last result), after one untimed
    warm-up call."""
    result = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def explain_call(explainer, images, config):
    """The whole `explain` call with `config`'s settings."""
    options = dataclasses.asdict(config)
    return lambda: explainer.explain(images, method="l2caf", **options)


def authors_loop(head, feature_maps, iterations, learning_rate=0.5):
    """Per image, per iteration: filter A, run the head, one Adam step.

    The step is compiled once and called from Python, as the authors'
    TF1 code called `sess.run` once per iteration.
    """
    _, h, w, _ = feature_maps.shape
    f, m, v = (tf.Variable(tf.zeros((h, w))) for _ in range(3))

    @tf.function
    def step(a, unfiltered, t):
        with tf.GradientTape() as tape:
            c = f / tf.norm(f)
            loss = tf.reduce_mean(tf.square(unfiltered - head(a * c[None, :, :, None])))
        g = tape.gradient(loss, f)
        rate = learning_rate * (1.0 - t / iterations)
        m.assign(0.9 * m + 0.1 * g)
        v.assign(0.999 * v + 0.001 * g * g)
        f.assign_sub(rate * tf.sqrt(1 - 0.999 ** (t + 1)) / (1 - 0.9 ** (t + 1))
                     * m / (tf.sqrt(v) + 1e-8))
        return loss

    def run(count):
        for i in range(count):
            a = feature_maps[i:i + 1]
            unfiltered = head(a)
            f.assign(tf.random.normal((h, w), seed=i))
            m.assign(tf.zeros((h, w)))
            v.assign(tf.zeros((h, w)))
            for it in range(iterations):
                step(a, unfiltered, tf.constant(float(it)))
    return run


def run_case(name, args):
    model_name, layer = CASES[name]
    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, model_name)(
        weights=None, input_shape=(args.size, args.size, 3))
    images = tf.random.stateless_uniform((args.batch, args.size, args.size, 3),
                                         [args.image_seed, 0], 0, 255)
    explainer = Explainer(model, layer)
    forward = lambda: explainer.forward(images)[1].numpy()  # noqa: E731
    print(f"\n{model_name} @ {layer}: forward "
          f"{best_of(forward, args.repeats)[0] * 1e3 / args.batch:.0f} ms/img")
    print(f"  {'configuration':42s} {'explain/forward':>15s} {'iterations':>10s} "
          f"{'objective':>11s} {'mean Δ':>9s} {'worst Δ':>9s} {'Pearson min':>11s}")
    reference = None
    configs = dict(CONFIGS, **(VARIANTS if args.variants else {}))
    for label, config in configs.items():
        seconds, result = best_of(explain_call(explainer, images, config), args.repeats)
        # The forward pass is timed again right after, so that both sides
        # of the ratio see the same load on a shared machine.
        t_forward, _ = best_of(forward, args.repeats)
        if reference is None:
            reference = result
        r = pearson_per_image(result.maps, reference.maps)
        change = (result.losses - reference.losses) / np.abs(reference.losses)
        print(f"  {label:42s} {seconds / t_forward:14.2f}x {result.iterations.mean():10.1f} "
              f"{result.losses.mean():11.6g} {change.mean():+9.1e} {change.max():+9.1e} "
              f"{r.min():11.4f}", flush=True)
    if args.per_image_loop and name == args.cases.split(",")[-1]:
        feature_maps = explainer.forward(images)[0]
        loop = authors_loop(explainer.split.head, feature_maps, 1000)
        loop(1)  # compile the step
        start = time.perf_counter()
        loop(args.batch)
        print(f"  {'authors per-image loop, 1000 its':38s} "
              f"{(time.perf_counter() - start) / t_forward:14.2f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--image_seed", type=int, default=0,
                        help="seed of the uniform images (another seed: images no setting "
                             "was chosen on)")
    parser.add_argument("--variants", action="store_true",
                        help="also time L-BFGS after Adam, and re-running the whole head")
    parser.add_argument("--per_image_loop", action="store_true")
    args = parser.parse_args()
    print(f"weights=None, {args.size} px, batch {args.batch}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}, TF {tf.__version__}")
    for name in args.cases.split(","):
        run_case(name, args)


if __name__ == "__main__":
    main()
