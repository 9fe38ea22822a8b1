"""L2-CAF speed on ResNet50 (weights=None): forward pass vs batched L2-CAF vs
the authors' per-image loop, measured in one run and printed as ratios.

    .venv/bin/python bench/caf_speed.py [--batch 16] [--size 224] [--iterations 300]

The authors' style: one image at a time, the whole head re-run at every
iteration from a Python loop (their "fast" mode: A computed once).
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfcaf.caf import Explainer  # noqa: E402
from tfcaf.caf.solver import SolverConfig  # noqa: E402


def best_of(fn, repeats):
    """Fastest of `repeats` timed calls (after one untimed warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


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


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    model = keras.applications.ResNet50(weights=None, input_shape=(args.size, args.size, 3))
    images = tf.random.uniform((args.batch, args.size, args.size, 3), 0, 255, seed=0)
    explainer = Explainer(model)
    features = tf.function(lambda x: explainer.split.features(x, training=False))
    feature_maps = features(images)
    config = SolverConfig(max_iterations=args.iterations, tolerance=0.0)
    params = explainer.initial_filters(feature_maps, config)

    def l2caf():
        explainer._l2caf_xla(feature_maps, None, params, config)[0].numpy()

    def l2caf_generic():
        generic._l2caf(feature_maps, None, params, config)[0].numpy()

    generic = Explainer(model)
    generic.split.dense = None
    t_forward = best_of(lambda: features(images).numpy(), args.repeats)
    t_l2caf = best_of(l2caf, args.repeats)
    t_generic = best_of(l2caf_generic, 1)
    loop = authors_loop(explainer.split.head, feature_maps, args.iterations)
    loop(1)  # compile the step
    start = time.perf_counter()
    loop(args.batch)
    t_loop = time.perf_counter() - start
    print(f"ResNet50 weights=None, {args.size} px, batch {args.batch}, "
          f"{args.iterations} iterations, {os.cpu_count()} CPUs, TF {tf.__version__}")
    print(f"  backbone forward (features)         {t_forward:8.3f} s")
    print(f"  L2-CAF batched, closed-form head    {t_l2caf:8.3f} s"
          f"  = {t_l2caf / t_forward:.3f} x forward")
    print(f"  L2-CAF batched, head re-run         {t_generic:8.3f} s"
          f"  = {t_generic / t_forward:.3f} x forward")
    print(f"  authors' per-image loop             {t_loop:8.3f} s"
          f"  = {t_loop / t_forward:.3f} x forward")
    print(f"  speed-up vs authors' loop: closed form {t_loop / t_l2caf:.0f}x, "
          f"head re-run {t_loop / t_generic:.1f}x")


if __name__ == "__main__":
    main()
