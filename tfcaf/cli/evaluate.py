"""`bin/evaluate`: localization, retrieval and sanity-check evaluation."""

import logging

from absl import app, flags

from tfcaf.cli.errors import USER_ERRORS, exit_with

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "Model: a .keras file or an exported SavedModel folder.")
flags.DEFINE_enum("dataset", "digits", ["digits", "cub", "imagenet", "folder"], "Dataset.")
flags.DEFINE_string("data_dir", None, "Dataset root (digits: cache folder).")
flags.DEFINE_string("split", None, "Split (default: test, val for imagenet, or "
                    "retrieval_test for retrieval nets).")
flags.DEFINE_list("metric", ["iou"], "iou, maxboxacc, recall, nmi, sanity (comma separated).")
flags.DEFINE_list("methods", ["cam", "gradcam", "l2caf", "l2caf_specific"],
                  "Heatmap methods; those that do not apply to the model are skipped.")
flags.DEFINE_float("cam_threshold", 0.2, "τ: heatmap threshold of the box.")
flags.DEFINE_float("iou_threshold", 0.5, "IoU for a correct localization.")
flags.DEFINE_integer("max_images", None, "Evaluate an evenly spaced subset of this size.",
                     lower_bound=1)
flags.DEFINE_integer("batch_size", 32, "Images per batch.", lower_bound=1)
flags.DEFINE_integer("iterations", 1000, "L2-CAF iteration cap.")
flags.DEFINE_integer("image_size", None, "Input size (default: the model's; 224 if open).")
flags.DEFINE_integer("sanity_images", 16, "Images of the sanity check.")
flags.DEFINE_integer("sanity_stages", 6, "Layers randomised, from the output down.")
flags.DEFINE_enum("sanity_mode", "cascading", ["cascading", "independent"],
                  "Randomise layers cumulatively from the output down, or one at a time.")
flags.DEFINE_integer("seed", 0, "Seed of K-means and of the randomisation.")
flags.DEFINE_string("out_dir", "eval_out", "Where metrics.json, report.md and PNGs go.")


def main(argv):
    del argv
    logging.getLogger("tfcaf").setLevel(logging.INFO)
    if not FLAGS.model:
        raise app.UsageError("--model is required")
    from tfcaf.data import load_dataset
    from tfcaf.evaluation import evaluate, load_adapter
    try:
        adapter = load_adapter(FLAGS.model, FLAGS.iterations)
        default_split = "val" if FLAGS.dataset == "imagenet" else "test"
        split = FLAGS.split or ("retrieval_test" if adapter.embedding else default_split)
        size = (FLAGS.image_size, FLAGS.image_size) if FLAGS.image_size else adapter.image_size
        dataset = load_dataset(FLAGS.dataset, FLAGS.data_dir, split, image_size=size)
        summary = evaluate(adapter, dataset, FLAGS.out_dir, FLAGS.metric, FLAGS.methods,
                           FLAGS.cam_threshold, FLAGS.iou_threshold, FLAGS.max_images,
                           FLAGS.batch_size, FLAGS.sanity_images, FLAGS.sanity_stages,
                           FLAGS.seed, FLAGS.sanity_mode == "cascading")
    except USER_ERRORS as err:
        exit_with("evaluate", err)
    for method, values in summary["methods"].items():
        print(method, "  ".join(f"{k} {v:.4f}" for k, v in values.items()))
    for key, value in summary.get("retrieval", {}).items():
        print(f"{key} {value:.4f}")
    print(f"report: {FLAGS.out_dir}/report.md")
