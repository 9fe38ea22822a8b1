"""`bin/visualize`: heatmap pictures for image files."""

import glob
import os

import numpy as np
from absl import app, flags, logging

from tfcaf import applications, render
from tfcaf.cli.errors import USER_ERRORS, exit_with
from tfcaf.caf import METHODS, Explainer
from tfcaf.caf.heatmaps import to_image_size
from tfcaf.caf.filters import FILTERS

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "keras.applications name (e.g. ResNet50) or a .keras file.")
flags.DEFINE_string("weights", "imagenet", "For application names: imagenet, none, or a weights file.")
flags.DEFINE_list("images", None, "Image files or globs, comma separated.")
flags.DEFINE_enum("method", "l2caf", METHODS, "Visualization method.")
flags.DEFINE_string("layer", None, "Layer to split at (default: the last 4-D layer).")
flags.DEFINE_list("targets", None, "Class ids to explain (default: each image's top-1).")
flags.DEFINE_enum("filter", "l2norm", FILTERS, "L2-CAF filter constraint.")
flags.DEFINE_integer("iterations", 1000, "L2-CAF iteration cap.", lower_bound=1)
flags.DEFINE_string("out_dir", "visualize_out", "Output folder.")
flags.DEFINE_boolean("gif", False, "Also write the L2-CAF convergence animation.")
flags.DEFINE_integer("gif_every", 10, "Iterations between GIF frames.", lower_bound=1)
flags.DEFINE_integer("batch_size", 16, "Images solved together.", lower_bound=1)
flags.DEFINE_integer("image_size", 224, "Input size for models whose input size is open.")


def expand_images(patterns):
    """Files named by `patterns` (paths or globs), in order, without repeats."""
    paths = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise FileNotFoundError(f"no image matches '{pattern}'")
        paths += [p for p in matches if p not in paths]
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"image '{path}' does not exist")
    return paths


def _outputs_for(explanation, index, targets):
    """[(suffix, heatmap (H, W), raw map, snapshots)] for one image."""
    h, m = explanation.heatmaps[index], explanation.maps[index]
    snaps = None if explanation.snapshots is None else explanation.snapshots[index]
    if explanation.targets is None:
        return [("", h, m, snaps)]
    if np.ndim(explanation.targets) == 1:
        return [(f"_t{explanation.targets[index]}", h, m, snaps)]
    return [(f"_t{t}", h[j], m[j], None if snaps is None else snaps[j])
            for j, t in enumerate(targets)]


def visualize_files(model, preprocess, paths, out_dir, method="l2caf", layer=None,
                    targets=None, batch_size=16, gif_every=0, size=None, **options):
    """Writes `<stem><_tK>.png` (original | heatmap | overlay) and `.npy` raw
    maps (h, w) for every image, plus `.gif` animations when `gif_every`.

    Returns:
        The list of files written.
    """
    explainer = Explainer(model, layer=layer)
    size = size or applications.input_size(model)
    os.makedirs(out_dir, exist_ok=True)
    if method.startswith("l2caf") and gif_every:
        options["snapshot_every"] = gif_every
    written = []
    for start in range(0, len(paths), batch_size):
        batch_paths = paths[start:start + batch_size]
        pixels = np.stack([render.read_rgb(p, size) for p in batch_paths])
        batch_targets = None
        if targets is not None:
            batch_targets = np.tile(np.asarray(targets)[None], (len(batch_paths), 1))
        explanation = explainer.explain(preprocess(pixels.astype(np.float32)), method,
                                        batch_targets, **options)
        for i, path in enumerate(batch_paths):
            stem = os.path.join(out_dir, os.path.splitext(os.path.basename(path))[0])
            for suffix, heat, raw, snaps in _outputs_for(explanation, i, targets):
                render.write_png(stem + suffix + ".png", render.panel(pixels[i], heat))
                np.save(stem + suffix + ".npy", raw)
                written += [stem + suffix + ".png", stem + suffix + ".npy"]
                if snaps is not None:
                    # The batch records frames until its slowest image stops.
                    used = -(-int(np.max(explanation.iterations[i])) // gif_every)
                    frames = to_image_size(snaps[:used], size).numpy()
                    render.write_gif(stem + suffix + ".gif", pixels[i], frames)
                    written.append(stem + suffix + ".gif")
        logging.info("[%d/%d] images explained with %s at layer '%s'",
                     start + len(batch_paths), len(paths), method, explainer.layer)
    return written


def main(argv):
    del argv
    if not FLAGS.model or not FLAGS.images:
        raise app.UsageError("--model and --images are required")
    try:
        model, preprocess = applications.load_model(FLAGS.model, FLAGS.weights)
        paths = expand_images(FLAGS.images)
        targets = None if FLAGS.targets is None else [int(t) for t in FLAGS.targets]
        options = {}
        if FLAGS.method.startswith("l2caf"):
            options = dict(filter=FLAGS.filter, max_iterations=FLAGS.iterations)
        written = visualize_files(
            model, preprocess, paths, FLAGS.out_dir, FLAGS.method, FLAGS.layer, targets,
            FLAGS.batch_size, FLAGS.gif_every if FLAGS.gif else 0,
            applications.input_size(model, FLAGS.image_size), **options)
    except USER_ERRORS as err:
        exit_with("visualize", err)
    print(f"wrote {len(written)} files to {FLAGS.out_dir}")
