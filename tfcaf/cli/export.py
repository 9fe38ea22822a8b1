"""`bin/export`: a trained `.keras` model as a TF Serving SavedModel."""

import os
import subprocess
import sys

from absl import app, flags

from tfcaf.cli.errors import USER_ERRORS, exit_with

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "Trained model (.keras) to export.")
flags.DEFINE_string("export_base", "exports", "TF Serving model base folder.")
flags.DEFINE_string("name", None, "Model name: the export goes to EXPORT_BASE/NAME/VERSION.")
flags.DEFINE_integer("version", None, "Version number (default: the next free one).")
flags.DEFINE_integer("iterations", 300, "L2-CAF iterations of the explain signatures.",
                     lower_bound=1)
flags.DEFINE_integer("top_k", 5, "Classes returned by serving_default.", lower_bound=1)
flags.DEFINE_string("layer", None, "Layer L2-CAF splits at (default: the last 4-D layer).")
flags.DEFINE_integer("image_size", None, "Input size for models whose input size is open.")
flags.DEFINE_string("check", None, "Instead of exporting: load this export with plain "
                    "TensorFlow in a subprocess, list and run its signatures.")


def check_export(path):
    """Runs tfcaf/export/check.py on `path` in an isolated interpreter; returns its exit code."""
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise FileNotFoundError(f"'{path}' is not a SavedModel folder (no saved_model.pb)")
    script = os.path.join(os.path.dirname(os.path.dirname(__file__)), "export", "check.py")
    return subprocess.call([sys.executable, "-I", script, path])


def main(argv):
    del argv
    try:
        if FLAGS.check:
            sys.exit(check_export(FLAGS.check))
        if not FLAGS.model or not FLAGS.name:
            raise app.UsageError("--model and --name are required (or use --check)")
        if not FLAGS.model.endswith(".keras"):
            raise ValueError(f"--model={FLAGS.model}: give a trained .keras model (tfcaf "
                             "models take raw pixels; the export adds no preprocessing)")
        from tfcaf import applications
        from tfcaf.export import export_savedmodel
        model, _ = applications.load_model(FLAGS.model)
        size = (FLAGS.image_size, FLAGS.image_size) if FLAGS.image_size else None
        path = export_savedmodel(model, FLAGS.export_base, FLAGS.name, FLAGS.version,
                                 FLAGS.iterations, FLAGS.top_k, FLAGS.layer, size)
    except USER_ERRORS as err:
        exit_with("export", err)
    print(f"exported {FLAGS.model} to {path}")
