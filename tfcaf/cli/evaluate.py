"""Evaluates a model's heatmaps and embeddings with the metrics of the
registry (`tfcaf.metrics.registry`): localization (IoU, MaxBoxAcc, PxAP),
retrieval (R@K, NMI), faithfulness, robustness, complexity and the
randomisation sanity check (docs/method.md §4-§7). Writes metrics.json,
report.md and PNGs to --out_dir.
"""

import os

from absl import flags

from tfcaf.cli import choices, method_flags, model_flags, solver_flags, strategy_flags
from tfcaf.errors import TfcafError
from tfcaf.evaluation.config import EvalConfig

FLAGS = flags.FLAGS
# Flags that set an `EvalConfig` field take its default, so each is written once
# (`tfcaf.evaluation.config` loads no TensorFlow).
_DEFAULT = EvalConfig()
flags.DEFINE_string("model", None, "Model: a .keras file, an exported SavedModel folder, or "
                    "keras_hub:<preset, preset folder or backbone config .json>.")
flags.DEFINE_integer("image_size", None, "Input size in pixels (default: the model's; 224 "
                     "if open).", lower_bound=1)
MODEL_FLAGS = model_flags.define()
# --seed seeds K-means and the randomisation; the filters' seed is --solver_seed.
SOLVER_FLAGS = solver_flags.define(seed="solver_seed")
METHOD_FLAGS = method_flags.define()
flags.DEFINE_enum("dataset", "digits", choices.DATASETS, "Dataset.")
flags.DEFINE_string("data_dir", None, "Dataset root (digits: cache folder).")
flags.DEFINE_string("split", None, "Split (default: test, val for imagenet, or "
                    "retrieval_test for retrieval nets).")
flags.DEFINE_integer("max_images", _DEFAULT.max_images,
                     "Evaluate an evenly spaced subset of this size.", lower_bound=1)
flags.DEFINE_integer("batch_size", _DEFAULT.batch_size, "Images per batch.", lower_bound=1)
flags.DEFINE_list("metric", list(_DEFAULT.metrics),
                  "Metrics, comma separated: " + ", ".join(choices.metric_names()))
flags.DEFINE_list("metric_modules", [], "Python modules to import first, comma separated: "
                  "each registers metrics of its own (tfcaf.metrics.registry.register), "
                  "which --metric then accepts.")
flags.DEFINE_list("metric_options", [], "METRIC.OPTION=VALUE, comma separated: a metric's "
                  "own settings (docs/method.md §7 lists them; the flags below set theirs).")
flags.DEFINE_list("methods", ["cam", "gradcam", "l2caf", "l2caf_specific"],
                  "Heatmap methods, comma separated: " + ", ".join(choices.METHODS) +
                  "; those that do not apply to the model are skipped with a warning.")
flags.DEFINE_float("cam_threshold", _DEFAULT.cam_threshold, "τ: heatmap threshold of the box "
                   "at a fixed threshold (top-1 / GT-known localization).", lower_bound=0.0,
                   upper_bound=1.0)
flags.DEFINE_float("iou_threshold", _DEFAULT.iou_threshold, "δ: IoU of a correct localization.",
                   lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_enum("box_protocol", _DEFAULT.box_protocol, choices.BOX_PROTOCOLS,
                  "How a heatmap becomes boxes: wsolevaluation (clovaai/wsolevaluation, the "
                  "WSOL literature's protocol) or tfcaf (8-connected components at image size).")
flags.DEFINE_integer("nmi_inits", _DEFAULT.nmi_inits,
                     "K-means initialisations of NMI (seed fixed).", lower_bound=1)
flags.DEFINE_integer("faithfulness_step", _DEFAULT.faithfulness_step, "Pixels removed/inserted "
                     "per deletion/insertion step (default: the image width).", lower_bound=1)
flags.DEFINE_integer("pointing_tolerance", _DEFAULT.pointing_tolerance, "Pixels added to every "
                     "side of a ground-truth box in the pointing game (Zhang et al.: 15).",
                     lower_bound=0)
flags.DEFINE_integer("sanity_images", _DEFAULT.sanity_images, "Images of the sanity check.",
                     lower_bound=1)
flags.DEFINE_integer("sanity_stages", _DEFAULT.sanity_stages,
                     "Layers randomised, from the output down.", lower_bound=1)
flags.DEFINE_enum("sanity_mode", "cascading" if _DEFAULT.sanity_cascading else "independent",
                  ["cascading", "independent"],
                  "Randomise layers cumulatively from the output down, or one at a time.")
flags.DEFINE_integer("seed", _DEFAULT.seed,
                     "Seed of K-means, of the randomisation and of noise baselines.")
flags.DEFINE_string("out_dir", "eval_out", "Where metrics.json, report.md and PNGs go. An "
                    "interrupted run resumes when the same command runs again.")
flags.DEFINE_boolean("overwrite", False, "Discard an unfinished run into --out_dir made with "
                     "other settings, instead of refusing to mix them.")
STRATEGY_FLAGS = strategy_flags.define()

flags.register_validator("methods", lambda v: choices.check_names(v, choices.METHODS))

FLAG_GROUPS = (
    ("Model", ("model", "image_size") + MODEL_FLAGS),
    ("Method", SOLVER_FLAGS + METHOD_FLAGS),
    ("Data", ("dataset", "data_dir", "split", "max_images", "batch_size")),
    ("Metrics", ("metric", "metric_modules", "metric_options", "methods", "cam_threshold", "iou_threshold", "box_protocol",
                 "nmi_inits", "faithfulness_step", "pointing_tolerance")),
    ("Sanity checks", ("sanity_images", "sanity_stages", "sanity_mode", "seed")),
    ("Output", ("out_dir", "overwrite")),
    ("Devices", STRATEGY_FLAGS),
)


def eval_config():
    """The `EvalConfig` the parsed flags describe."""
    return EvalConfig(
        metrics=FLAGS.metric, methods=FLAGS.methods, cam_threshold=FLAGS.cam_threshold,
        iou_threshold=FLAGS.iou_threshold, box_protocol=FLAGS.box_protocol,
        max_images=FLAGS.max_images, batch_size=FLAGS.batch_size, nmi_inits=FLAGS.nmi_inits,
        faithfulness_step=FLAGS.faithfulness_step,
        pointing_tolerance=FLAGS.pointing_tolerance, sanity_images=FLAGS.sanity_images,
        sanity_stages=FLAGS.sanity_stages, sanity_cascading=FLAGS.sanity_mode == "cascading",
        seed=FLAGS.seed, metric_options=metric_options_flag()).validate()


def metric_options_flag():
    """{metric: {option: value}} of --metric_options, typed by the
    registry's defaults; `TfcafError` naming the item at fault."""
    from tfcaf.metrics import registry
    parsed = {}
    for item in FLAGS.metric_options:
        name, _, value = item.partition("=")
        metric_name, _, option = name.partition(".")
        if not value or not option or metric_name not in registry.METRICS:
            raise TfcafError(f"--metric_options={item}: give METRIC.OPTION=VALUE with METRIC "
                             f"one of {', '.join(registry.names())}")
        defaults = registry.metric(metric_name).options
        if option not in defaults:
            raise TfcafError(f"--metric_options={item}: {metric_name} has no option "
                             f"'{option}' (its options: {', '.join(defaults) or 'none'})")
        parsed.setdefault(metric_name, {})[option] = method_flags.typed_value(
            value, defaults[option], item, "metric_options")
    return parsed


def _import_metric_modules():
    """Imports --metric_modules (their metrics register themselves)."""
    import importlib
    for name in FLAGS.metric_modules:
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise TfcafError(f"--metric_modules={name}: cannot import it ({err})") from None


def check_flags():
    """--metric_modules imported and --metric known; solver flags valid
    together; --model given; neither they nor --preprocessing given with a
    SavedModel (its settings were fixed at export)."""
    _import_metric_modules()
    try:
        choices.check_names(FLAGS.metric, choices.metric_names())
    except flags.ValidationError as err:
        raise TfcafError(f"--metric: {err}") from None
    metric_options_flag()
    solver_flags.check()
    method_flags.method_options_flag()
    if not FLAGS.model:
        raise TfcafError("--model is required: a .keras file or an exported SavedModel folder")
    given = solver_flags.given() + [f"--preprocessing={FLAGS.preprocessing}"] * (
        FLAGS.preprocessing is not None)
    if given and os.path.isfile(os.path.join(FLAGS.model, "saved_model.pb")):
        raise TfcafError(f"{' '.join(given)}: --model={FLAGS.model} is a SavedModel, whose "
                         "solver settings and preprocessing were fixed at export (bin/export "
                         "takes these flags)")


def main(argv):
    del argv
    from tfcaf.data import load_dataset
    from tfcaf.evaluation import evaluate, load_adapter
    config = eval_config()
    # Before the model: a multi-worker strategy must come before other ops.
    strategy = strategy_flags.strategy()
    adapter = load_adapter(FLAGS.model, solver_flags.solver_config(), output=FLAGS.output,
                           preprocessing=model_flags.preprocessing(),
                           method_options=method_flags.method_options_flag())
    default_split = "val" if FLAGS.dataset == "imagenet" else "test"
    split = FLAGS.split or ("retrieval_test" if adapter.embedding else default_split)
    size = adapter.input_size(FLAGS.image_size)
    dataset = load_dataset(FLAGS.dataset, FLAGS.data_dir, split, image_size=size)
    summary = evaluate(adapter, dataset, FLAGS.out_dir, config, overwrite=FLAGS.overwrite,
                       strategy=strategy)
    if summary is None:
        print("done: this worker's batches are written; the chief writes the report")
        return
    for method, values in summary["methods"].items():
        print(method, "  ".join(f"{k} {v:.4f}" for k, v in values.items()
                                if isinstance(v, (int, float))))
    for key, value in summary.get("retrieval", {}).items():
        if isinstance(value, (int, float)):
            print(f"{key} {value:.4f}")
    print(f"report: {FLAGS.out_dir}/report.md")


if __name__ == "__main__":
    from tfcaf.cli.launch import run
    run("evaluate")
