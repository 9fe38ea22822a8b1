"""`make demo`: the main job, end to end on the embedded digits set.

Trains a triplet and an N-pair retrieval net and an ADL classifier with the
`flags/digits_*.flags` settings, exports each as a SavedModel, evaluates
every one-pass method of `tfcaf.caf.METHODS` that applies (`demo_methods`:
the many-pass ones, Score-CAM to RISE, would take hours at the demo's image
counts): localization (top-1 /
GT-known loc and MaxBoxAcc under the wsolevaluation protocol), retrieval
(R@K, NMI with 10 K-means initialisations) and faithfulness (deletion,
insertion, Average Drop / Increase in Confidence, pointing game), and writes
`OUT_DIR/report.md`. A second run reuses the dataset cache, the trained
models and the exports (`--force` retrains).
"""

import dataclasses
import logging
import os
import platform
import shutil
import time

from absl import flags

from tfcaf.cli import solver_flags
from tfcaf.cli.train_flags import parse_flagfile
from tfcaf.export.settings import EXPORT_ITERATIONS

FLAGS = flags.FLAGS
flags.DEFINE_string("out_dir", "demo_out", "Where models, exports and the report go.")
flags.DEFINE_string("data_dir", None, "Digits cache root (default: the user cache).")
flags.DEFINE_boolean("force", False, "Retrain and re-export even if results exist.")
flags.DEFINE_boolean("smoke", False, "A few steps and images: checks the pipeline, not results.")
flags.DEFINE_integer("max_images", 1000, "Evaluation images per network (evenly spaced).")
flags.DEFINE_integer("faithfulness_images", 100,
                     "Images per network for the faithfulness metrics (evenly spaced; each "
                     "costs about 2 · H · W / step forward passes per method).", lower_bound=1)
flags.DEFINE_integer("faithfulness_step", 256, "Pixels per deletion/insertion step "
                     "(256 = 4 rows of a 64-px image: 17 points per curve).", lower_bound=1)

# No --output: each of the three networks' output is guessed right.
SOLVER_FLAGS = solver_flags.define(
    iterations_help="Default: the --solver preset's for the evaluation, bin/export's "
    f"{EXPORT_ITERATIONS} for the exports; when given, both.", output=False)

FLAG_GROUPS = (
    ("Run", ("out_dir", "data_dir", "force", "smoke")),
    ("Evaluation", ("max_images", "faithfulness_images", "faithfulness_step")),
    ("Method", SOLVER_FLAGS),
)
check_flags = solver_flags.check

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


def export_network(model, name, out_dir, force, solver):
    """Exports version 1 (explain signatures solved with the `SolverConfig`
    `solver`) unless it exists; returns its path."""
    from tfcaf.export import export_savedmodel
    path = os.path.join(out_dir, "exports", name, "1")
    if force:
        shutil.rmtree(path, ignore_errors=True)
    if not os.path.exists(path):
        export_savedmodel(model, os.path.join(out_dir, "exports"), name, version=1,
                          solver=solver)
    return path


LOCALIZATION = ("iou", "maxboxacc")
FAITHFULNESS = ("deletion", "insertion", "average_drop", "pointing_game")


def evaluate_network(name, config, model_path, out_dir, options):
    """Localization (+ retrieval) metrics of one network on its test split,
    in `eval/NAME`, and faithfulness metrics on fewer images, in
    `eval/NAME/faithfulness`; returns ({"main", "faithfulness"} summaries,
    model)."""
    from tfcaf import applications
    from tfcaf.caf import METHODS
    from tfcaf.data import load_dataset
    from tfcaf.evaluation import EvalConfig, KerasAdapter, evaluate
    model = applications.load_model(model_path)
    adapter = KerasAdapter(model, solver=options["solver"])
    split = "retrieval_test" if config.metric_learning else "test"
    dataset = load_dataset("digits", config.data_dir, split, image_size=config.image_size)
    retrieval = ("recall", "nmi") if config.metric_learning else ()
    base = EvalConfig(methods=demo_methods(METHODS), seed=config.seed)
    main = dataclasses.replace(base, metrics=LOCALIZATION + retrieval,
                               max_images=options["max_images"])
    faithful = dataclasses.replace(base, metrics=FAITHFULNESS,
                                   max_images=options["faithfulness_images"],
                                   faithfulness_step=options["faithfulness_step"])
    folder = os.path.join(out_dir, "eval", name)
    return {"main": evaluate(adapter, dataset, folder, main),
            "faithfulness": evaluate(adapter, dataset, os.path.join(folder, "faithfulness"),
                                     faithful),
            "seeds": _seed_stability(model, dataset, options)}, model


def _seed_stability(model, dataset, options):
    """L2-CAF's per-image map Pearson between initial-filter seeds 0 and 1
    on the first `seed_images` evenly spaced images: min, median, the
    share below 0.9, and the resolved solver."""
    import numpy as np
    from tfcaf.evaluation import seed_stability
    count = min(options["seed_images"], len(dataset))
    images = np.concatenate([x.numpy() for x, _, _ in dataset.evenly_spaced(count, count)])
    pearson, solver = seed_stability(model, images, options["solver"])
    return {"images": count, "pearson_min": float(pearson.min()),
            "pearson_median": float(np.median(pearson)),
            "below_0.9": float((pearson < 0.9).mean() * 100), "solver": solver}


# Report tables: (title, summary part, column in its per-method rows, the
# sentence printed under the table).
_BOXES = ("Boxes follow the wsolevaluation protocol: the counts equal those of "
          "clovaai/wsolevaluation@96f4b88 (`evaluation.py`) on the same maps and boxes.")
_TABLES = (
    ("Localization: top-1 loc (τ = 0.2, IoU ≥ 0.5)", "main", "top1_loc",
     _BOXES + " Top-1 condition: the predicted class is right (ADL) or the nearest "
     "neighbour has the query's class (retrieval nets, R@1; docs/method.md §5)."),
    ("Localization: GT-known loc (τ = 0.2, IoU ≥ 0.5)", "main", "gt_known_loc", _BOXES),
    ("Localization: MaxBoxAcc (best τ of 0, 0.01, ..., 0.99; IoU ≥ 0.5)", "main",
     "maxboxacc_v1", _BOXES + " It is the MaxBoxAcc of Choe et al. (CVPR 2020)."),
    ("Localization: MaxBoxAccV2 (all contours; mean over IoU 0.3, 0.5, 0.7)", "main",
     "maxboxacc_v2", _BOXES + " It is wsolevaluation's MaxBoxAccV2 (`--box_v2_metric`)."),
    ("Faithfulness: deletion AUC (lower is better)", "faithfulness", "deletion_auc",
     "RISE deletion (Petsiuk et al. 2018): removed pixels become the substrate (black for "
     "the digits models, whose preprocessing is x / 255), trapezoid AUC on [0, 1]; scores "
     "are the ground-truth class's softmax probability (ADL) or the cosine similarity to "
     "the image's embedding (retrieval nets). No reference repository computes it for "
     "retrieval nets; for classifiers it follows eclique/RISE's `CausalMetric`."),
    ("Faithfulness: insertion AUC (higher is better)", "faithfulness", "insertion_auc",
     "RISE insertion: from a Gaussian blur (kernel 11, σ 5) of the image, the most salient "
     "pixels are put back first; scores and AUC as for deletion (eclique/RISE)."),
    ("Faithfulness: Average Drop % (lower is better)", "faithfulness", "average_drop",
     "Grad-CAM++ (Chattopadhay et al. 2018): the score's relative drop on image ⊙ heatmap, "
     "the product taken in the model's input space as pytorch-grad-cam's "
     "`multiply_tensor_with_cam` does (it multiplies the normalised input by the map)."),
    ("Faithfulness: Increase in Confidence % (higher is better)", "faithfulness",
     "increase_in_confidence", "Grad-CAM++: the share of images whose score rises on "
     "image ⊙ heatmap."),
    ("Faithfulness: pointing game % (higher is better)", "faithfulness", "pointing_game",
     "Zhang et al. 2016: the heatmap's maximum lies in a ground-truth box ± 15 px."),
)


def _table_rows(results, part, column, methods):
    return {name: {m: summaries[part]["methods"].get(m, {}).get(column) for m in methods}
            for name, summaries in results.items()}


def demo_methods(methods):
    """The names of `methods` (the registry) the demo evaluates: all but
    those that need many passes per image."""
    return tuple(name for name, spec in methods.items() if not spec.many_passes)


def write_report(out_dir, results, timings, smoke, options):
    """demo_out/report.md: one table per metric, examples, curves, timings."""
    from tfcaf.caf import METHODS
    from tfcaf.evaluation.report import markdown_table, write_text
    from tfcaf.outputs import OutputSet
    methods = list(demo_methods(METHODS))
    left_out = [name for name in METHODS if name not in methods]
    lines = ["# tfcaf demo: L2-CAF on the embedded cluttered digits", ""]
    if smoke:
        lines += ["**Smoke run** (a few steps and images): numbers are meaningless.", ""]
    retrieval = {name: {**s["main"].get("retrieval", {}), "images": s["main"]["images"]}
                 for name, s in results.items()}
    faithful_images = {s["faithfulness"]["images"] for s in results.values()}
    lines += [
        "Retrieval nets are evaluated on the held-out classes 5-9, the ADL classifier on the "
        f"test split; localization on up to {options['max_images']} evenly spaced images, "
        f"faithfulness on {', '.join(map(str, sorted(faithful_images)))} with "
        f"{options['faithfulness_step']} pixels per deletion/insertion step. Numbers in %, "
        "deletion/insertion AUCs × 100; '–': the method does not apply (CAM and "
        "class-specific L2-CAF need class logits). Each network's split layer, L2-CAF "
        "solver (the optimizer and restarts resolved for its head: iteration cap "
        f"{options['solver'].max_iterations}, seed {options['solver'].seed}), degenerate-map "
        "counts and versions are recorded in "
        "`eval/NAME/metrics.json` (\"settings\") and `eval/NAME/report.md`. Left out: "
        f"{', '.join(left_out)}, which run the model tens to thousands of times per image "
        "(`bin/evaluate --methods=` runs them).", "",
        "## Retrieval", "", markdown_table(retrieval, ["recall@1", "nmi", "images"], "network"),
        "", "NMI: scikit-learn `KMeans(n_init=10, random_state=0)` and NMI with the geometric "
        "mean, as the metric-learning literature computes it (equal to scikit-learn's "
        "`normalized_mutual_info_score(average_method='geometric')`).", ""]
    for title, part, column, note in _TABLES:
        lines += [f"## {title}", "", markdown_table(_table_rows(results, part, column, methods),
                                                    methods, "network"), "", note, ""]
    seeds = {name: {"solver": f"{s['seeds']['solver']['optimizer']} ×"
                    f"{s['seeds']['solver']['restarts']}",
                    **{k: s["seeds"][k] for k in ("pearson_min", "pearson_median", "below_0.9",
                                                  "images")}}
             for name, s in results.items()}
    lines += ["## L2-CAF seed stability", "", markdown_table(
        seeds, ["solver", "pearson_min", "pearson_median", "below_0.9", "images"], "network",
        percent=False),
        "", "Per-image Pearson correlation of the class-oblivious L2-CAF maps of two runs that "
        "differ only in their random initial filters (seeds 0 and 1; solver: the optimizer "
        "resolved for the head × its starts per image). The objective is not convex, so a map "
        "can change with its start (docs/method.md §1, \"Restarts and seed stability\"); "
        "`below_0.9`: % of images under 0.9.", ""]
    lines += ["## Examples and deletion/insertion curves", ""]
    for name in results:
        lines += [f"### {name}", "", f"![{name}](eval/{name}/examples.png)", "",
                  f"![{name} curves](eval/{name}/faithfulness/curves.png)", ""]
    lines += ["## Time", "", f"Machine: {platform.platform()}, {os.cpu_count()} CPU cores.", ""]
    lines += [f"- {step}: {seconds:.0f} s" for step, seconds in timings.items()]
    path = os.path.join(out_dir, "report.md")
    # The output rule of every binary (tfcaf.outputs): runs/, exports/ and
    # eval/ keep their own.
    outputs = OutputSet(out_dir, "--out_dir")
    outputs.claim([path])
    outputs.write(path, lambda temporary: write_text(temporary, "\n".join(lines) + "\n"))
    outputs.finish()
    return path


def run_demo(out_dir, data_dir=None, force=False, smoke=False, max_images=1000,
             faithfulness_images=100, faithfulness_step=256, solver=None, iterations=None):
    """The whole job; returns the report path.

    Args:
        solver: `SolverConfig` of the evaluation and of the exports' explain
            signatures (default: the default one).
        iterations: iteration cap of both; None: the solver's for the
            evaluation and `EXPORT_ITERATIONS` for the exports (100 for both
            in smoke runs).
    """
    from tfcaf.caf import SolverConfig
    from tfcaf.outputs import check_folder
    check_folder(out_dir, "--out_dir")  # before any training, under the flag's own name
    solver = SolverConfig() if solver is None else solver
    caps = (iterations, iterations) if iterations is not None else \
        (100, 100) if smoke else (solver.max_iterations, EXPORT_ITERATIONS)
    solver, export_solver = (dataclasses.replace(solver, max_iterations=cap) for cap in caps)
    options = {"solver": solver,
               "max_images": 24 if smoke else max_images,
               "faithfulness_images": 8 if smoke else faithfulness_images,
               "faithfulness_step": faithfulness_step,
               "seed_images": 8 if smoke else 64}
    timings, results = {}, {}
    started = time.time()
    for name in NETWORKS:
        config = network_config(name, out_dir, data_dir, smoke)
        clock = time.time()
        model_path = train_network(config, force)
        timings[f"train {name}"] = time.time() - clock
        clock = time.time()
        results[name], model = evaluate_network(name, config, model_path, out_dir, options)
        timings[f"evaluate {name}"] = time.time() - clock
        clock = time.time()
        export_network(model, name, out_dir, force, export_solver)
        timings[f"export {name}"] = time.time() - clock
    timings["total"] = time.time() - started
    return write_report(out_dir, results, timings, smoke, options)


def main(argv):
    del argv
    if FLAGS.smoke:
        print("smoke run: a few training steps and images, to check the pipeline")
    given = not FLAGS["iterations"].using_default_value
    path = run_demo(FLAGS.out_dir, FLAGS.data_dir, FLAGS.force, FLAGS.smoke,
                    FLAGS.max_images, FLAGS.faithfulness_images, FLAGS.faithfulness_step,
                    solver_flags.solver_config(), FLAGS.iterations if given else None)
    print(f"report: {os.path.abspath(path)}")


if __name__ == "__main__":
    from tfcaf.cli.launch import run
    run("demo")
