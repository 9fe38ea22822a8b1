"""Writes tests/data/tfa_golden.npz: tensorflow-addons 0.23 loss values and
gradients on seeded inputs, for the parity tests of tfcaf.losses.

Runs in the side virtualenv made by tools/make_tfa_golden.sh (TensorFlow
2.15 + tensorflow-addons 0.23), never in the project's. After writing the
file it also runs tfcaf's pure-TensorFlow losses on the same inputs under
TF 2.15 and reports the largest deviation, so the core is known to work on
both TensorFlow versions (skip with --no-check).

File layout: `meta` is a JSON list of case descriptions; the arrays of case
`name` are stored under `name.<field>` (labels, embeddings, loss,
grad_embeddings and, for N-pair cases, similarity and grad_similarity).
"""

import argparse
import importlib
import json
import pathlib
import sys
import types
import warnings

import numpy as np
import tensorflow as tf

# tfa announces its end of life on import; that is known and not news here.
warnings.filterwarnings("ignore", category=UserWarning, module="tensorflow_addons")
import tensorflow_addons as tfa  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "tests" / "data" / "tfa_golden.npz"

# Inputs are redrawn while a triplet comparison is closer than this (relative
# to the distance scale): there float32 round-off, which differs between TF
# versions, may legitimately pick another negative or flip a hinge.
MIN_RELATIVE_GAP = 2e-5

# Callable distance metrics; tests/test_losses_golden.py defines the same.
CALLABLE_METRICS = {
    # The example of tfa's own docstring: a similarity used as a distance.
    "callable-matmul": lambda x: tf.linalg.matmul(x, x, transpose_b=True),
    "callable-manhattan": lambda x: tf.reduce_sum(
        tf.abs(x[:, None, :] - x[None, :, :]), axis=-1),
}
METRICS = ("L2", "squared-L2", "angular") + tuple(CALLABLE_METRICS)
LAYOUTS = ("pk", "random", "singletons", "all-same", "all-distinct",
           "sparse-ids", "duplicates", "collapsed")
# Every distance is exactly equal by construction: ties are the point.
TIED_LAYOUTS = ("collapsed",)


def triplet_labels(layout, batch, rng):
    """Integer labels (B,) of one label layout."""
    if layout == "pk":
        per_class = 2 + batch % 3
        return np.arange(batch) // per_class
    if layout == "random":
        return rng.integers(0, max(2, batch // 3), size=batch)
    if layout == "singletons":
        pairs = rng.integers(0, 2, size=batch // 2)
        return np.concatenate([pairs, 100 + np.arange(batch - batch // 2)])
    if layout == "all-same":
        return np.zeros(batch, np.int64)
    if layout == "all-distinct":
        return rng.permutation(batch)
    if layout == "sparse-ids":
        return rng.choice(np.array([-7, 3, 1000, 123456]), size=batch)
    if layout == "duplicates":
        return np.arange(batch) // 2
    if layout == "collapsed":
        return np.arange(batch) % 3
    raise ValueError(f"unknown layout {layout!r}")


def _mined_gaps(dist, labels, margin):
    """Smallest |d(a,n) - d(a,p)| and |hinge| over the batch (numpy)."""
    same = labels[:, None] == labels[None, :]
    positive = same & ~np.eye(len(labels), dtype=bool)
    negative = ~same
    gaps, hinges = [np.inf], [np.inf]
    for a, p in zip(*np.nonzero(positive)):
        d_ap, d_neg = dist[a, p], dist[a][negative[a]]
        if not d_neg.size:
            continue
        gaps.append(np.min(np.abs(d_neg - d_ap)))
        farther = d_neg[d_neg > d_ap]
        mined = farther.min() if farther.size else d_neg.max()
        hinges.append(abs(margin + d_ap - mined))
    return min(gaps), min(hinges)


def _triplet_distances(metric, embeddings):
    if metric in CALLABLE_METRICS:
        return CALLABLE_METRICS[metric](tf.constant(embeddings)).numpy()
    if metric == "angular":
        return tfa.losses.metric_learning.angular_distance(embeddings).numpy()
    squared = metric == "squared-L2"
    return tfa.losses.metric_learning.pairwise_distance(
        embeddings, squared=squared).numpy()


def well_conditioned(metric, labels, embeddings, margin):
    """False when a mining comparison or a hinge is a near tie."""
    dist = _triplet_distances(metric, embeddings.astype(np.float32))
    scale = max(np.abs(dist).max(), 1e-6)
    gap, hinge = _mined_gaps(dist, labels, margin)
    return gap >= MIN_RELATIVE_GAP * scale and hinge >= MIN_RELATIVE_GAP * scale


def draw_embeddings(rng, batch, dim, scale, normalise, layout):
    emb = rng.normal(size=(batch, dim)) * scale
    if layout == "duplicates":
        # A duplicated positive pair, and tied negatives for other anchors.
        emb[1] = emb[0]
        emb[3 % batch] = emb[2 % batch]
    if layout == "collapsed":
        # Dyadic values keep |x|² + |x|² - 2 x·x exactly 0 in float32, so
        # the scale and normalisation are not applied.
        return np.tile(np.resize([0.5, -1.0, 2.0, 0.25], dim), (batch, 1))
    if normalise:
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return emb


def round_to(emb, dtype):
    """`emb` in `dtype`; bfloat16 values are stored as float32 (numpy has
    no bfloat16) and cast back by the losses."""
    if dtype == "bfloat16":
        return tf.cast(tf.cast(emb, tf.bfloat16), tf.float32).numpy()
    return emb.astype(dtype)


def triplet_case_specs():
    """Every metric x layout, with sizes, margins and scales cycled."""
    batches = (2, 5, 8, 12, 16, 24, 32, 9)
    dims = (2, 3, 8, 16, 1, 32, 5)
    margins = (0.0, 0.2, 0.5, 1.0, 2.5)
    scales = (0.1, 1.0, 3.0, 10.0)
    specs = []
    for i, metric in enumerate(METRICS):
        for j, layout in enumerate(LAYOUTS):
            k = i * len(LAYOUTS) + j
            normalise = (i + j) % 2 == 0 and layout not in TIED_LAYOUTS
            dim = dims[k % len(dims)]
            specs.append(dict(
                kind="triplet", metric=metric, layout=layout,
                batch=batches[k % len(batches)],
                # One-dimensional unit vectors are +-1: all distances tie.
                dim=max(dim, 2) if normalise else dim,
                margin=margins[k % len(margins)], scale=scales[k % len(scales)],
                normalised=normalise, dtype="float32"))
    # The paper's setting (128-d, L2-normalised, margin 0.2) and half floats.
    specs.append(dict(kind="triplet", metric="L2", layout="pk", batch=48,
                      dim=128, margin=0.2, scale=1.0, normalised=True,
                      dtype="float32"))
    for dtype in ("float16", "bfloat16"):
        specs.append(dict(kind="triplet", metric="L2", layout="pk", batch=16,
                          dim=8, margin=0.5, scale=1.0, normalised=False,
                          dtype=dtype))
    return specs


def make_triplet_case(index, spec):
    rng = np.random.default_rng(1000 + index)
    while True:
        labels = triplet_labels(spec["layout"], spec["batch"], rng).astype(np.int64)
        emb = draw_embeddings(rng, spec["batch"], spec["dim"], spec["scale"],
                              spec["normalised"], spec["layout"])
        emb = round_to(emb, spec["dtype"])
        if spec["layout"] in TIED_LAYOUTS or well_conditioned(
                spec["metric"], labels, emb, spec["margin"]):
            break
    emb_tf = tf.cast(tf.constant(emb), spec["dtype"])
    metric = CALLABLE_METRICS.get(spec["metric"], spec["metric"])
    with tf.GradientTape() as tape:
        tape.watch(emb_tf)
        loss = tfa.losses.triplet_semihard_loss(
            labels, emb_tf, margin=spec["margin"], distance_metric=metric)
    grad = tape.gradient(loss, emb_tf)
    return {"labels": labels, "embeddings": emb,
            "loss": np.float64(tf.cast(loss, tf.float64).numpy()),
            "grad_embeddings": tf.cast(grad, tf.float32).numpy()}


def npairs_labels(layout, pairs, rng):
    if layout == "distinct":
        return rng.permutation(10 * pairs)[:pairs]
    if layout == "repeated":
        return rng.integers(0, max(1, pairs // 2), size=pairs)
    if layout == "all-same":
        return np.full(pairs, 5)
    raise ValueError(f"unknown layout {layout!r}")


def multilabel_targets(pairs, rng):
    """Multi-hot (N, C) with at least one label per row."""
    classes = max(2, pairs // 2)
    hot = rng.random((pairs, classes)) < 0.3
    hot[np.arange(pairs), rng.integers(0, classes, size=pairs)] = True
    return hot.astype(np.float32)


def npairs_case_specs():
    specs = []
    sizes = ((1, 4), (2, 3), (4, 16), (8, 8), (16, 32), (32, 64), (5, 1))
    scales = (0.1, 1.0, 3.0)
    for kind, layouts in (("npairs", ("distinct", "repeated", "all-same")),
                          ("npairs_multilabel", ("multi-hot",))):
        for i, (pairs, dim) in enumerate(sizes):
            specs.append(dict(kind=kind, layout=layouts[i % len(layouts)],
                              pairs=pairs, dim=dim, scale=scales[i % len(scales)],
                              normalised=i % 3 == 1, dtype="float32"))
    specs.append(dict(kind="npairs", layout="distinct", pairs=8, dim=8,
                      scale=1.0, normalised=False, dtype="float16"))
    return specs


def make_npairs_case(index, spec):
    rng = np.random.default_rng(2000 + index)
    pairs = spec["pairs"]
    if spec["kind"] == "npairs":
        labels = npairs_labels(spec["layout"], pairs, rng).astype(np.int64)
        loss_fn = tfa.losses.npairs_loss
    else:
        labels = multilabel_targets(pairs, rng)
        loss_fn = tfa.losses.npairs_multilabel_loss
    emb = draw_embeddings(rng, 2 * pairs, spec["dim"], spec["scale"],
                          spec["normalised"], spec["layout"]).astype(spec["dtype"])
    emb_tf = tf.constant(emb)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(emb_tf)
        similarity = tf.matmul(emb_tf[0::2], emb_tf[1::2], transpose_b=True)
        tape.watch(similarity)
        loss = loss_fn(labels, similarity)
    grads = tape.gradient(loss, [emb_tf, similarity])
    return {"labels": labels, "embeddings": emb,
            "similarity": similarity.numpy(),
            "loss": np.float64(tf.cast(loss, tf.float64).numpy()),
            "grad_embeddings": grads[0].numpy(),
            "grad_similarity": grads[1].numpy()}


def build_cases():
    meta, arrays = [], {}
    for maker, specs in ((make_triplet_case, triplet_case_specs()),
                         (make_npairs_case, npairs_case_specs())):
        for index, spec in enumerate(specs):
            name = f"{spec['kind']}_{index:02d}"
            for field, value in maker(index, spec).items():
                arrays[f"{name}.{field}"] = value
            meta.append({"name": name, **spec})
    return meta, arrays


def _import_core():
    """tfcaf's pure-TF loss modules, without the Keras package __init__."""
    for package, path in (("tfcaf", REPO / "tfcaf"),
                          ("tfcaf.losses", REPO / "tfcaf" / "losses")):
        module = types.ModuleType(package)
        module.__path__ = [str(path)]
        sys.modules[package] = module
    return (importlib.import_module("tfcaf.losses.triplet"),
            importlib.import_module("tfcaf.losses.npairs"))


def _ours(case, data, triplet, npairs):
    emb = tf.cast(tf.constant(data["embeddings"]), case["dtype"])
    with tf.GradientTape() as tape:
        tape.watch(emb)
        if case["kind"] == "triplet":
            metric = CALLABLE_METRICS.get(case["metric"], case["metric"])
            loss = triplet.triplet_semihard_loss(
                data["labels"], emb, case["margin"], metric)
        elif case["kind"] == "npairs":
            loss = npairs.npairs_embedding_loss(
                np.repeat(data["labels"], 2), emb)
        else:
            loss = npairs.npairs_multilabel_loss(
                data["labels"], tf.matmul(emb[0::2], emb[1::2], transpose_b=True))
    grad = tf.cast(tape.gradient(loss, emb), tf.float32).numpy()
    return float(tf.cast(loss, tf.float64).numpy()), grad


def tolerance(case):
    """(rtol, atol) of the parity check; tfa runs the N-pair softmax in
    half precision itself, where tfcaf uses float32."""
    if case["dtype"] == "float32":
        return 1e-5, 1e-6
    return 1e-2, 1e-3


def check_core(meta, arrays):
    """How far tfcaf's core is from tfa per case, under TF 2.15.

    Returns:
        dict case name -> largest |ours - tfa| / (atol + rtol |tfa|) over
        the loss and the gradient entries; at most 1 passes the tests.
    """
    triplet, npairs = _import_core()
    deviations = {}
    for case in meta:
        data = {k.split(".", 1)[1]: v for k, v in arrays.items()
                if k.startswith(case["name"] + ".")}
        if np.isnan(data["loss"]):
            continue  # the documented difference: tfa NaN, tfcaf 0
        loss, grad = _ours(case, data, triplet, npairs)
        rtol, atol = tolerance(case)
        ours = np.append(grad.ravel(), loss)
        want = np.append(data["grad_embeddings"].astype(np.float64).ravel(),
                         data["loss"])
        deviations[case["name"]] = float(
            np.max(np.abs(ours - want) / (atol + rtol * np.abs(want))))
    return deviations


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    parser.add_argument("--no-check", action="store_true",
                        help="skip running tfcaf's losses under TF 2.15")
    args = parser.parse_args(argv)
    tf.get_logger().setLevel("ERROR")  # tfa's tf.functions retrace per shape
    meta, arrays = build_cases()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, meta=np.array(json.dumps(meta)), **arrays)
    print(f"wrote {len(meta)} cases to {args.out} "
          f"({args.out.stat().st_size / 1024:.0f} KiB) with TF {tf.__version__}, "
          f"tfa {tfa.__version__}")
    if not args.no_check:
        deviations = check_core(meta, arrays)
        worst = max(deviations, key=deviations.get)
        print(f"tfcaf core under TF {tf.__version__}: largest deviation "
              f"{deviations[worst]:.3f} of the tolerance ({worst})")
        failed = sorted(name for name, dev in deviations.items() if dev > 1)
        if failed:
            print("outside the tolerance:", ", ".join(failed))
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
