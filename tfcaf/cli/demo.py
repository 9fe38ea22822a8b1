"""`make demo`: the main job, end to end on the embedded digits set.

Trains a triplet and an N-pair retrieval net and an ADL classifier with the
`flags/digits_*.flags` settings, exports each as a SavedModel, evaluates
localization (CAM, Grad-CAM, L2-CAF) and retrieval (R@K, NMI), and writes
`OUT_DIR/report.md`. A second run reuses the dataset cache, the trained
models and the exports (`--force` retrains).
"""

import dataclasses
import logging
import os
import platform
import shutil
import time

from absl import app, flags

from tfcaf.cli.errors import USER_ERRORS, exit_with
from tfcaf.cli.train_flags import parse_flagfile

FLAGS = flags.FLAGS
flags.DEFINE_string("out_dir", "demo_out", "Where models, exports and the report go.")
flags.DEFINE_string("data_dir", None, "Digits cache root (default: the user cache).")
flags.DEFINE_boolean("force", False, "Retrain and re-export even if results exist.")
flags.DEFINE_boolean("smoke", False, "A few steps and images: checks the pipeline, not results.")
flags.DEFINE_integer("max_images", 1000, "Evaluation images per network (evenly spaced).")

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NETWORKS = ("digits_triplet", "digits_npairs", "digits_adl")
log = logging.getLogger("tfcaf.demo")


def network_config(name, out_dir, data_dir, smoke):
    """The flagfile's `TrainConfig`, pointed at `out_dir` (tiny when smoke)."""
    config = parse_flagfile(os.path.join(REPO, "flags", f"{name}.flags"))
    config = dataclasses.replace(config, model_dir=os.path.join(out_dir, "runs", name),
                                 data_dir=data_dir)
    if smoke:
        config = dataclasses.replace(
            config, train_steps=4, image_size=32, log_every=2, checkpoint_every=4,
            val_examples=16, summary_images=1, batch_size=min(config.batch_size, 16))
    return config


def train_network(config, force):
    """Trains unless model.keras exists; returns its path."""
    from tfcaf.training import train
    path = os.path.join(config.model_dir, "model.keras")
    if force:
        shutil.rmtree(config.model_dir, ignore_errors=True)
    if os.path.exists(path):
        log.info("reusing %s (--force retrains)", path)
    else:
        log.info("training %s: %d steps", config.model_dir, config.train_steps)
        train(config)
    return path


def export_network(model, name, out_dir, force, iterations):
    """Exports version 1 unless it exists; returns its path."""
    from tfcaf.export import export_savedmodel
    path = os.path.join(out_dir, "exports", name, "1")
    if force:
        shutil.rmtree(path, ignore_errors=True)
    if not os.path.exists(path):
        export_savedmodel(model, os.path.join(out_dir, "exports"), name, version=1,
                          iterations=iterations)
    return path


def evaluate_network(name, config, model_path, out_dir, max_images, iterations):
    """Localization (+ retrieval) metrics of one network on its test split."""
    from tfcaf import applications
    from tfcaf.data import load_dataset
    from tfcaf.evaluation import EvalConfig, KerasAdapter, evaluate
    model = applications.load_model(model_path)
    adapter = KerasAdapter(model, iterations=iterations)
    split = "retrieval_test" if config.metric_learning else "test"
    dataset = load_dataset("digits", config.data_dir, split, image_size=config.image_size)
    metrics = ["iou", "maxboxacc"] + (["recall", "nmi"] if config.metric_learning else [])
    methods = ["cam", "gradcam", "l2caf", "l2caf_specific"]
    eval_config = EvalConfig(metrics=metrics, methods=methods, max_images=max_images,
                             seed=config.seed)
    return evaluate(adapter, dataset, os.path.join(out_dir, "eval", name), eval_config), model


def _row(summary):
    """One report row: retrieval numbers and GT-known / top-1 loc per method."""
    row = {k: summary.get("retrieval", {}).get(k) for k in ("recall@1", "nmi")}
    for method, values in summary["methods"].items():
        row[f"{method} top-1 loc"] = values.get("top1_loc")
        row[f"{method} GT-known"] = values.get("gt_known_loc")
        row[f"{method} MaxBoxAcc"] = values.get("maxboxacc_v1")
    row["images"] = summary["images"]
    return row


def write_report(out_dir, results, timings, smoke):
    """demo_out/report.md: one table per metric family, examples, timings."""
    from tfcaf.evaluation.report import markdown_table
    rows = {name: _row(summary) for name, summary in results.items()}
    methods = ["cam", "gradcam", "l2caf", "l2caf_specific"]
    loc = lambda kind: [f"{m} {kind}" for m in methods]
    lines = ["# tfcaf demo: L2-CAF on the embedded cluttered digits", ""]
    if smoke:
        lines += ["**Smoke run** (a few steps and images): numbers are meaningless.", ""]
    lines += ["Retrieval nets are evaluated on the held-out classes 5-9 (top-1 condition: the",
              "nearest neighbour has the query's class, as in the seed's S2); the ADL classifier",
              "on the test split (top-1 condition: the predicted class is right). Boxes: largest",
              "connected component at τ = 0.2; correct at IoU ≥ 0.5. Numbers in %; '–': the",
              "method does not apply (CAM and class-specific L2-CAF need class logits).", "",
              "## Retrieval", "", markdown_table(rows, ["recall@1", "nmi", "images"], "network"),
              "", "## Localization: top-1 loc", "", markdown_table(rows, loc("top-1 loc"), "network"),
              "", "## Localization: GT-known loc", "",
              markdown_table(rows, loc("GT-known"), "network"), "",
              "## Localization: MaxBoxAcc (best τ)", "",
              markdown_table(rows, loc("MaxBoxAcc"), "network"), "", "## Examples", ""]
    for name in results:
        lines += [f"### {name}", "", f"![{name}](eval/{name}/examples.png)", ""]
    lines += ["## Time", "", f"Machine: {platform.platform()}, {os.cpu_count()} CPU cores.", ""]
    lines += [f"- {step}: {seconds:.0f} s" for step, seconds in timings.items()]
    path = os.path.join(out_dir, "report.md")
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(path + ".tmp", path)
    return path


def run_demo(out_dir, data_dir=None, force=False, smoke=False, max_images=1000):
    """The whole job; returns the report path."""
    iterations = 100 if smoke else 1000
    max_images = 24 if smoke else max_images
    timings, results = {}, {}
    started = time.time()
    for name in NETWORKS:
        config = network_config(name, out_dir, data_dir, smoke)
        clock = time.time()
        model_path = train_network(config, force)
        timings[f"train {name}"] = time.time() - clock
        clock = time.time()
        results[name], model = evaluate_network(name, config, model_path, out_dir,
                                                max_images, iterations)
        timings[f"evaluate {name}"] = time.time() - clock
        clock = time.time()
        export_network(model, name, out_dir, force, 100 if smoke else 300)
        timings[f"export {name}"] = time.time() - clock
    timings["total"] = time.time() - started
    return write_report(out_dir, results, timings, smoke)


def main(argv):
    del argv
    logging.getLogger("tfcaf").setLevel(logging.INFO)
    if FLAGS.smoke:
        print("smoke run: a few training steps and images, to check the pipeline")
    try:
        path = run_demo(FLAGS.out_dir, FLAGS.data_dir, FLAGS.force, FLAGS.smoke,
                        FLAGS.max_images)
    except USER_ERRORS as err:
        exit_with("demo", err)
    print(f"report: {os.path.abspath(path)}")


if __name__ == "__main__":
    app.run(main)
