"""`make demo`: the main job, end to end on the embedded digits set.

Trains a triplet and an N-pair retrieval net and an ADL classifier (CNNs;
with `--networks`, also a classifier and a triplet net on a Vision
Transformer, keras-hub `vit_tiny`, left out with a line saying so where
keras-hub is not installed) with the `flags/digits_*.flags` settings,
exports each as a SavedModel, evaluates
every method of `tfcaf.caf.METHODS` that applies (the many-pass ones,
Score-CAM to RISE, on fewer images: `demo_methods`): localization (top-1 /
GT-known loc and MaxBoxAcc under the wsolevaluation protocol, PxAP),
retrieval (R@K, NMI with 10 K-means initialisations), faithfulness
(deletion, insertion, Average Drop / Increase in Confidence, pointing game,
ROAD, MuFidelity, Faithfulness Correlation), stability and complexity
(`LOCALIZATION`, `FAITHFULNESS`: the metric registry's names), and writes
`OUT_DIR/report.md`. A second run reuses the dataset cache, the trained
models and the exports (`--force` retrains).
"""

import dataclasses
import logging
import os
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
flags.DEFINE_list("networks", None, "Networks to run (flags/<name>.flags), in this order, "
                  "among digits_triplet, digits_npairs, digits_adl, digits_vit, "
                  "digits_vit_triplet; default: the three CNNs (the ViTs' evaluation takes "
                  "about 8 s per image on 2 CPU cores).")
flags.DEFINE_integer("max_images", 1000, "Evaluation images per network (evenly spaced).")
flags.DEFINE_integer("faithfulness_images", 100,
                     "Images per network for the faithfulness metrics (evenly spaced; each "
                     "costs about 2 · H · W / step forward passes per method).", lower_bound=1)
flags.DEFINE_integer("many_pass_images", 25,
                     "Images per network for the many-pass methods (Score-CAM, Ablation-CAM, "
                     "Integrated Gradients, Occlusion, SmoothGrad, RISE), for localization and "
                     "faithfulness alike (evenly spaced).", lower_bound=1)
flags.DEFINE_integer("faithfulness_step", 256, "Pixels per deletion/insertion step "
                     "(256 = 4 rows of a 64-px image: 17 points per curve).", lower_bound=1)

# No --output: each network's output is guessed right.
SOLVER_FLAGS = solver_flags.define(
    iterations_help="Default: the --solver preset's for the evaluation, bin/export's "
    f"{EXPORT_ITERATIONS} for the exports; when given, both.", output=False)

FLAG_GROUPS = (
    ("Run", ("out_dir", "data_dir", "force", "smoke", "networks")),
    ("Evaluation", ("max_images", "faithfulness_images", "many_pass_images",
                    "faithfulness_step")),
    ("Method", SOLVER_FLAGS),
)
check_flags = solver_flags.check

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NETWORKS = ("digits_triplet", "digits_npairs", "digits_adl", "digits_vit", "digits_vit_triplet")
DEFAULT_NETWORKS = NETWORKS[:3]
# Networks on keras-hub backbones (an optional dependency).
HUB_NETWORKS = ("digits_vit", "digits_vit_triplet")
log = logging.getLogger("tfcaf.demo")


def chosen_networks(names=None):
    """`names` (default `DEFAULT_NETWORKS`) checked, less the keras-hub ones when
    keras-hub is not installed (said in a log line); TfcafError for an
    unknown name."""
    import importlib.util
    from tfcaf.errors import TfcafError
    names = list(DEFAULT_NETWORKS if names is None else names)
    unknown = [name for name in names if name not in NETWORKS]
    if unknown or not names:
        raise TfcafError(f"--networks={','.join(names)}: choose among {', '.join(NETWORKS)}")
    if importlib.util.find_spec("keras_hub") is None:
        left_out = [name for name in names if name in HUB_NETWORKS]
        if left_out:
            log.warning("leaving out %s: keras-hub is not installed (pip install "
                        "'tfcaf[hub]', Python >= 3.11)", ", ".join(left_out))
        names = [name for name in names if name not in HUB_NETWORKS]
    return names


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


def export_network(model, name, out_dir, force, solver, methods=None):
    """Exports version 1 (explain signatures of `methods`, default all,
    L2-CAF's solved with the `SolverConfig` `solver`) unless it exists;
    returns its path."""
    from tfcaf.export import export_savedmodel
    path = os.path.join(out_dir, "exports", name, "1")
    if force:
        shutil.rmtree(path, ignore_errors=True)
    if not os.path.exists(path):
        export_savedmodel(model, os.path.join(out_dir, "exports"), name, version=1,
                          solver=solver, methods=methods)
    return path


# A smoke run exports three methods' signatures, not all (each traces the
# model once more); tests/test_export.py serves every one.
SMOKE_EXPORT_METHODS = ("l2caf", "l2caf_specific", "gradcam")
LOCALIZATION = ("iou", "maxboxacc", "pxap")
# RISE's 4000 masks (xplique's default) take 3.5 s per 64-px image on 2
# cores; 1000 keep the demo in its time budget.
DEMO_METHOD_OPTIONS = {"rise": {"nb_samples": 1000}}
# Every "maps" metric that is not localization (the registry's order).
FAITHFULNESS = ("deletion", "insertion", "average_drop", "pointing_game", "road", "mufidelity",
                "faithfulness_correlation", "stability", "sparseness", "complexity")
# Fewer perturbations than the references' defaults, for time
# (bench/faithfulness.py: per 1,000 images × method, MuFidelity's 200
# samples take 94 s, ROAD's 9 percentiles 96 s, 100 Faithfulness
# Correlation runs 45 s; each stability copy is a whole explanation).
DEMO_METRIC_OPTIONS = {"mufidelity": {"nb_samples": 50},
                       "faithfulness_correlation": {"nb_runs": 50},
                       "road": {"percentiles": (10, 30, 50, 70, 90)},
                       "stability": {"nb_samples": 4}}


def evaluate_network(name, config, model_path, out_dir, options):
    """Localization (+ retrieval) and faithfulness metrics of one network on
    its test split, the one-pass methods in `eval/NAME` (faithfulness on
    fewer images, in `eval/NAME/faithfulness`), the many-pass ones on fewer
    still, both families in one run, in `eval/NAME/many_pass`; returns ({"localization": [summaries],
    "faithfulness": [summaries], "seeds": ...}, model)."""
    from tfcaf import applications
    from tfcaf.caf import METHODS
    from tfcaf.data import load_dataset
    from tfcaf.evaluation import EvalConfig, KerasAdapter, evaluate
    model = applications.load_model(model_path)
    adapter = KerasAdapter(model, solver=options["solver"],
                           method_options=options["method_options"])
    split = "retrieval_test" if config.metric_learning else "test"
    dataset = load_dataset("digits", config.data_dir, split, image_size=config.image_size)
    retrieval = ("recall", "nmi") if config.metric_learning else ()
    one_pass, many_pass = demo_methods(METHODS)
    folder = os.path.join(out_dir, "eval", name)

    def run(methods, metrics, images, out):
        return evaluate(adapter, dataset, out, EvalConfig(
            methods=methods, metrics=metrics, max_images=images, seed=config.seed,
            faithfulness_step=options["faithfulness_step"],
            metric_options={m: v for m, v in options["metric_options"].items()
                            if m in metrics}))
    localization = run(one_pass, LOCALIZATION + retrieval, options["max_images"], folder)
    # The many-pass methods' maps are their cost: one run computes them
    # once for both metric families.
    many_pass_run = run(many_pass, LOCALIZATION + FAITHFULNESS,
                        min(options["many_pass_images"], options["faithfulness_images"]),
                        os.path.join(folder, "many_pass"))
    faithfulness = run(one_pass, FAITHFULNESS, options["faithfulness_images"],
                       os.path.join(folder, "faithfulness"))
    results = {"localization": [localization, many_pass_run],
               "faithfulness": [faithfulness, many_pass_run]}
    results["seeds"] = _seed_stability(model, dataset, options)
    return results, model


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


def demo_methods(methods):
    """(one-pass, many-pass) names of `methods` (the registry): the demo
    evaluates the many-pass ones on fewer images."""
    return (tuple(name for name, spec in methods.items() if not spec.many_passes),
            tuple(name for name, spec in methods.items() if spec.many_passes))


def write_report(out_dir, results, timings, smoke, options):
    """demo_out/report.md (`demo_report`); returns its path."""
    from tfcaf.caf import METHODS
    from tfcaf.cli.demo_report import report_lines
    from tfcaf.evaluation.report import write_text
    from tfcaf.outputs import OutputSet
    lines = report_lines(results, timings, smoke, options, tuple(METHODS),
                         demo_methods(METHODS)[1])
    path = os.path.join(out_dir, "report.md")
    # The output rule of every binary (tfcaf.outputs): runs/, exports/ and
    # eval/ keep their own.
    outputs = OutputSet(out_dir, "--out_dir")
    outputs.claim([path])
    outputs.write(path, lambda temporary: write_text(temporary, "\n".join(lines) + "\n"))
    outputs.finish()
    return path


def run_demo(out_dir, data_dir=None, force=False, smoke=False, max_images=1000,
             faithfulness_images=100, faithfulness_step=256, solver=None, iterations=None,
             many_pass_images=25, networks=None):
    """The whole job; returns the report path.

    Args:
        networks: names of `NETWORKS` to run (default
            `DEFAULT_NETWORKS`; see `chosen_networks`).
        solver: `SolverConfig` of the evaluation and of the exports' explain
            signatures (default: the default one).
        iterations: iteration cap of both; None: the solver's for the
            evaluation and `EXPORT_ITERATIONS` for the exports (100 for both
            in smoke runs).
    """
    from tfcaf.caf import SolverConfig
    from tfcaf.outputs import check_folder
    check_folder(out_dir, "--out_dir")  # before any training, under the flag's own name
    networks = chosen_networks(networks)
    solver = SolverConfig() if solver is None else solver
    caps = (iterations, iterations) if iterations is not None else \
        (100, 100) if smoke else (solver.max_iterations, EXPORT_ITERATIONS)
    solver, export_solver = (dataclasses.replace(solver, max_iterations=cap) for cap in caps)
    options = {"solver": solver,
               "max_images": 24 if smoke else max_images,
               "faithfulness_images": 8 if smoke else faithfulness_images,
               "faithfulness_step": faithfulness_step,
               "many_pass_images": 2 if smoke else many_pass_images,
               "method_options": {"rise": {"nb_samples": 100}} if smoke else
               DEMO_METHOD_OPTIONS,
               "metric_options": {**DEMO_METRIC_OPTIONS, **({
                   "mufidelity": {"nb_samples": 8}, "faithfulness_correlation": {"nb_runs": 8},
                   "stability": {"nb_samples": 2}} if smoke else {})},
               "seed_images": 8 if smoke else 64}
    timings, results = {}, {}
    started = time.time()
    for name in networks:
        config = network_config(name, out_dir, data_dir, smoke)
        clock = time.time()
        model_path = train_network(config, force)
        timings[f"train {name}"] = time.time() - clock
        clock = time.time()
        results[name], model = evaluate_network(name, config, model_path, out_dir, options)
        timings[f"evaluate {name}"] = time.time() - clock
        clock = time.time()
        export_network(model, name, out_dir, force, export_solver,
                       SMOKE_EXPORT_METHODS if smoke else None)
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
                    solver_flags.solver_config(), FLAGS.iterations if given else None,
                    FLAGS.many_pass_images, FLAGS.networks)
    print(f"report: {os.path.abspath(path)}")


if __name__ == "__main__":
    from tfcaf.cli.launch import run
    run("demo")
