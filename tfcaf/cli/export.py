"""A trained model as a TF Serving SavedModel (EXPORT_BASE/NAME/VERSION) with
predict, predict_image_bytes and one explain signature per method; or, with
--check, load an export with plain TensorFlow and run its signatures.
"""

import logging
import os
import subprocess
import sys

from absl import flags

from tfcaf.cli import choices, method_flags, model_flags, solver_flags
from tfcaf.errors import TfcafError
from tfcaf.export.settings import EXPORT_ITERATIONS

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "Trained .keras model, a keras.applications name "
                    "(e.g. ResNet50), or keras_hub:<preset, preset folder or backbone "
                    "config .json>.")
flags.DEFINE_string("weights", "imagenet",
                    "For application names: imagenet, none, or a weights file.")
flags.DEFINE_integer("image_size", None, "Input size in pixels; required for models whose "
                     "input size is open.", lower_bound=1)
MODEL_FLAGS = model_flags.define()
flags.DEFINE_string("export_base", "exports", "TF Serving model base folder.")
flags.DEFINE_string("name", None, "Model name: the export goes to EXPORT_BASE/NAME/VERSION.")
flags.DEFINE_integer("version", None, "Version number (default: the next free one).",
                     lower_bound=0)
flags.DEFINE_integer("top_k", 5, "Classes returned by serving_default.", lower_bound=1)
flags.DEFINE_string("layer", None, "Layer L2-CAF splits at (default: the last 4-D layer).")
SOLVER_FLAGS = solver_flags.define(
    iterations=EXPORT_ITERATIONS, iterations_help="Default: bin/export's own, for a bounded "
    "latency of the explain signatures.")
flags.DEFINE_list("methods", [], "Methods to give an explain signature, comma separated: "
                  + ", ".join(choices.METHODS) + " (default: every one that applies to the "
                  "model).")
flags.register_validator("methods",
                         lambda v: not v or choices.check_names(v, choices.METHODS))
METHOD_FLAGS = method_flags.define()
flags.DEFINE_string("check", None, "Instead of exporting: load this export with plain "
                    "TensorFlow in a subprocess, list and run its signatures.")

FLAG_GROUPS = (
    ("Model", ("model", "weights", "image_size", "layer") + MODEL_FLAGS),
    ("Method", ("methods",) + SOLVER_FLAGS + METHOD_FLAGS),
    ("Export", ("export_base", "name", "version", "top_k")),
    ("Check", ("check",)),
)


def check_flags():
    """Solver and method-option flags valid; --model and --name given
    (unless --check)."""
    solver_flags.check()
    method_flags.method_options_flag()
    if not FLAGS.check and (not FLAGS.model or not FLAGS.name):
        raise TfcafError("--model and --name are required (or use --check)")


def check_export(path):
    """Runs tfcaf/export/check.py on `path` in an isolated interpreter; returns its exit code."""
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise TfcafError(f"--check: '{path}' is not a SavedModel folder (no saved_model.pb)")
    script = os.path.join(os.path.dirname(os.path.dirname(__file__)), "export", "check.py")
    return subprocess.call([sys.executable, "-I", script, path])


def main(argv):
    del argv
    if FLAGS.check:
        sys.exit(check_export(FLAGS.check))
    from tfcaf import applications
    from tfcaf.export import export_savedmodel
    from tfcaf.export.savedmodel import destination
    final = destination(FLAGS.export_base, FLAGS.name, FLAGS.version)  # before the model loads
    model = applications.load_model(FLAGS.model, FLAGS.weights, model_flags.preprocessing())
    logging.getLogger("tfcaf.export").info("exporting %s to %s", FLAGS.model, final)
    path = export_savedmodel(model, FLAGS.export_base, FLAGS.name,
                             version=int(os.path.basename(final)),
                             solver=solver_flags.solver_config(), top_k=FLAGS.top_k,
                             layer=FLAGS.layer, output=FLAGS.output,
                             methods=FLAGS.methods or None,
                             method_options=method_flags.method_options_flag(),
                             image_size=applications.input_size(model, FLAGS.image_size,
                                                                default=None))
    print(f"exported {FLAGS.model} to {path}")


if __name__ == "__main__":
    from tfcaf.cli.launch import run
    run("export")
