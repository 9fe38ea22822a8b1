"""Heatmaps of where a CNN looks in image files: L2-CAF (class-oblivious or
class-specific), CAM, Grad-CAM and Grad-CAM++ (docs/method.md §1, §2).

For each image: NAME.png (title, image | heatmap | overlay, colour bar, at
the image's own aspect ratio), NAME.npy (the raw (h, w) map) and, with
--gif, NAME.gif (the L2-CAF convergence); --nopng writes the .npy alone.
--images takes files, globs, folders and dataset:NAME/SPLIT; --strategy
shares the batches among the GPUs of a machine or the hosts of TF_CONFIG
(`tfcaf.distribute.replicas`). --out_dir holds one run's files:
those of an earlier run it does not write again are removed, and a file no
tfcaf run wrote there (an input image included) is never replaced
(`tfcaf.outputs`).
"""

import dataclasses
import glob
import logging
import os
import sys
import threading

from absl import flags

from tfcaf.cli import choices, method_flags, model_flags, solver_flags, strategy_flags
from tfcaf.cli.naming import output_stems
from tfcaf.errors import TfcafError
from tfcaf.outputs import OutputSet

FLAGS = flags.FLAGS
DATASET_PREFIX = "dataset:"
flags.DEFINE_string("model", None, "keras.applications name (e.g. ResNet50), a .keras "
                    "file, or keras_hub:<preset, preset folder or backbone config .json>.")
flags.DEFINE_string("weights", "imagenet",
                    "For application names: imagenet, none, or a weights file.")
flags.DEFINE_string("layer", None, "Layer to split at (default: the last 4-D layer; a "
                    "ViT's: the input of its last attention).")
flags.DEFINE_integer("image_size", None, "Input size in pixels (default: the model's; 224 "
                     "where it is open). A size a model does not take is refused.",
                     lower_bound=1)
MODEL_FLAGS = model_flags.define()
flags.DEFINE_list("images", None, "Images, comma separated: files, globs, folders (their "
                  "image files, sub-folders included) or dataset:NAME[/SPLIT] (e.g. "
                  "dataset:digits/test: that split's image files; dataset:folder, with "
                  "--data_dir, a folder dataset's).")
flags.DEFINE_string("data_dir", None, "Dataset root of --images=dataset:NAME/SPLIT (digits: "
                    "the cache folder).")
flags.DEFINE_list("targets", None, "Class ids to explain, comma separated (default: each "
                  "image's top-1 class).")
flags.DEFINE_enum("method", "l2caf", choices.METHODS, "Visualization method.")
flags.DEFINE_enum("filter", "l2norm", choices.FILTERS, "L2-CAF filter constraint.")
SOLVER_FLAGS = solver_flags.define()
METHOD_FLAGS = method_flags.define()
flags.DEFINE_string("out_dir", "visualize_out", "Output folder (created when the first file "
                    "is ready). It holds one run's files: an earlier run's that this one does "
                    "not write again are removed; a file no tfcaf run wrote is never replaced. "
                    "An interrupted run resumes when the same command runs again.")
flags.DEFINE_boolean("png", True, "Write each map's figure (.png); --nopng writes the raw "
                     "maps (.npy) alone, the fast way through a whole dataset.")
flags.DEFINE_boolean("gif", False, "Also write the L2-CAF convergence animation.")
flags.DEFINE_integer("gif_every", 10, "Iterations between GIF frames.", lower_bound=1)
flags.DEFINE_integer("batch_size", 16, "Images solved together.", lower_bound=1)
STRATEGY_FLAGS = strategy_flags.define()


@flags.validator("targets", "give class ids, integers >= 0, comma separated")
def _targets_are_class_ids(values):
    if values is None:
        return True
    if not all(v.strip().isdigit() for v in values):
        return False
    ids = [int(v) for v in values]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        # Its maps would be written twice under one name.
        raise flags.ValidationError(f"class {repeated[0]} is given twice; give each class once")
    return True


FLAG_GROUPS = (
    ("Model", ("model", "weights", "layer", "image_size") + MODEL_FLAGS),
    ("Input", ("images", "data_dir", "targets")),
    ("Method", ("method", "filter") + SOLVER_FLAGS + METHOD_FLAGS),
    ("Output", ("out_dir", "png", "gif", "gif_every", "batch_size")),
    ("Devices", STRATEGY_FLAGS),
)
log = logging.getLogger("tfcaf.visualize")


def check_flags():
    """The solver flags are valid together, and given only to a method
    that has a solver; --model and --images given."""
    solver_flags.check()
    from tfcaf.caf.methods import METHODS
    unused = [f for f in solver_flags.given() if not f.startswith("--output=")]
    if unused and not METHODS[FLAGS.method].iterative:
        iterative = ", ".join(m.name for m in METHODS.values() if m.iterative)
        raise TfcafError(f"{' '.join(unused)}: --method={FLAGS.method} has no solver "
                         f"(methods with one: {iterative})")
    if not FLAGS.model or not FLAGS.images:
        raise TfcafError("--model and --images are required")
    others = sorted(set(method_flags.method_options_flag()) - {FLAGS.method})
    if others:
        raise TfcafError(f"--method_options: options of {', '.join(others)}, but "
                         f"--method={FLAGS.method}")


def expand_images(patterns, out_dir=None, data_dir=None):
    """Files named by `patterns`, in order, without repeats: paths, globs,
    folders (their image files, sub-folders included, sorted; none inside
    `out_dir`) and `dataset:NAME/SPLIT` (that split's image files, from
    `data_dir`, as `tfcaf.data.load_dataset` reads them; `dataset:NAME`
    its default split).

    Raises:
        TfcafError: a pattern matches nothing, names a missing file, a
            folder without images or an unknown dataset or split.
    """
    paths = []
    for pattern in patterns:
        if pattern.startswith(DATASET_PREFIX):
            matches = _dataset_images(pattern, data_dir)
        elif os.path.isdir(pattern):
            matches = _folder_images(pattern, out_dir)
        else:
            matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise TfcafError(f"--images: nothing matches '{pattern}'")
        known = {os.path.realpath(p) for p in paths}
        paths += [p for p in matches if os.path.isfile(p) and os.path.realpath(p) not in known]
        missing = [p for p in matches if not os.path.exists(p)]
        if missing:
            raise TfcafError(f"--images: image '{missing[0]}' does not exist")
    if not paths:
        raise TfcafError(f"--images: no image files among {','.join(patterns)}")
    return paths


def _folder_images(folder, out_dir):
    """The image files under `folder`, sorted, leaving out `out_dir` (a
    rerun must not explain its own figures)."""
    from tfcaf.data.folder import IMAGE_EXTENSIONS
    skipped = os.path.realpath(out_dir) if out_dir else None
    found = []
    for parent, subfolders, files in os.walk(folder):
        subfolders[:] = sorted(d for d in subfolders
                               if os.path.realpath(os.path.join(parent, d)) != skipped)
        found += [os.path.join(parent, f) for f in files
                  if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS]
    if not found:
        raise TfcafError(f"--images: folder '{folder}' holds no image files "
                         f"({', '.join(IMAGE_EXTENSIONS)})")
    return sorted(found)


def _dataset_images(pattern, data_dir):
    """The image files of `dataset:NAME[/SPLIT]` (no SPLIT: the dataset's
    default split, a folder dataset's whole folder)."""
    from tfcaf.data import load_dataset
    name, _, split = pattern[len(DATASET_PREFIX):].partition("/")
    if name not in choices.DATASETS:
        raise TfcafError(f"--images={pattern}: give dataset:NAME/SPLIT with NAME one of "
                         f"{', '.join(choices.DATASETS)} (e.g. dataset:digits/test)")
    return list(load_dataset(name, data_dir, **({"split": split} if split else {}),
                             check="exists").paths)


def _identity(model, writer, paths, targets):
    """What the run's files depend on (`visualize_runs`)."""
    from tfcaf.run_identity import weights_fingerprint
    return {"model": FLAGS.model, "weights": weights_fingerprint(model), "method": FLAGS.method,
            "layer": writer.layer, "solver": writer.solver, "options": writer.options,
            "input_size": list(writer.input_size), "targets": targets, "gif": FLAGS.gif,
            "images": [os.path.abspath(p) for p in paths]}


def _explain(writers, paths, stems, done, targets, outputs):
    """Writes the files of the images not `done`, in batches of
    --batch_size shared by the replicas of `writers` (`Replicas`); returns
    the indices of the images of the other workers' batches."""
    count = -(-len(paths) // FLAGS.batch_size)
    # Every batch is assigned, finished or not: each worker reads `done`
    # at its own moment, and the assignment must not depend on it.
    distributed, mine = writers.shard(list(range(count)))
    batch_images = lambda b: range(b * FLAGS.batch_size,  # noqa: E731
                                   min((b + 1) * FLAGS.batch_size, len(paths)))
    explained = [len(done)]
    lock = threading.Lock()

    def work(writer, batch):
        chosen = [i for i in batch_images(batch) if i not in done]
        if not chosen:
            return
        writer.write_batch([paths[i] for i in chosen], [stems[i] for i in chosen], targets,
                           outputs.write)
        with lock:
            explained[0] += len(chosen)
            log.info("[%d/%d] images explained with %s at layer '%s'", explained[0],
                     len(paths), FLAGS.method, writer.layer)

    writers.run(distributed, work)
    return [i for b in range(count) if b not in mine for i in batch_images(b)]


def main(argv):
    del argv
    from tfcaf import applications
    from tfcaf.caf import METHODS
    from tfcaf.cli import visualize_runs
    from tfcaf.cli.heatmap_files import HeatmapWriter, output_files
    from tfcaf.distribute.replicas import Replicas
    spec = METHODS[FLAGS.method]
    if FLAGS.gif and not spec.iterative:
        animated = ", ".join(m.name for m in METHODS.values() if m.iterative)
        raise TfcafError(f"--gif: --method={FLAGS.method} has no iterations to animate "
                         f"(methods with iterations: {animated})")
    # Before the model: a multi-worker strategy must come before other ops.
    strategy = strategy_flags.strategy()
    paths = expand_images(FLAGS.images, FLAGS.out_dir, FLAGS.data_dir)
    targets = None if FLAGS.targets is None else [int(t) for t in FLAGS.targets]
    stems = [os.path.join(FLAGS.out_dir, s) for s in output_stems(paths)]
    files = [output_files(stem, targets, FLAGS.gif, FLAGS.png) for stem in stems]
    outputs = OutputSet(FLAGS.out_dir, "--out_dir", inputs=paths)
    outputs.claim([f for image_files in files for f in image_files] +
                  [visualize_runs.run_file(FLAGS.out_dir)])
    model = applications.load_model(FLAGS.model, FLAGS.weights, model_flags.preprocessing())
    solver = dataclasses.replace(solver_flags.solver_config(), filter=FLAGS.filter)
    writer = HeatmapWriter(model, FLAGS.method, FLAGS.layer,
                           applications.input_size(model, FLAGS.image_size),
                           FLAGS.gif_every if FLAGS.gif else 0, solver, FLAGS.output,
                           method_flags.method_options_flag().get(FLAGS.method), FLAGS.png)
    identity = _identity(model, writer, paths, targets)
    done = set(visualize_runs.finished_images(FLAGS.out_dir, identity, files))
    writers = Replicas(writer, strategy)
    for index in done:
        for path in files[index]:
            outputs.keep(path)
    try:
        if writers.chief:
            visualize_runs.record(outputs, FLAGS.out_dir, identity, finished=False)
        others = _explain(writers, paths, stems, done, targets, outputs)
        visualize_runs.finish_worker(outputs, FLAGS.out_dir, identity, writers,
                                     [files[i] for i in others if i not in done],
                                     FLAGS.worker_timeout_s)
    except BaseException:
        written = [p for p in outputs.written if p != visualize_runs.run_file(FLAGS.out_dir)]
        if written:
            print(f"visualize: wrote {len(written)} files before the error: "
                  f"{', '.join(written)}", file=sys.stderr)
        raise
    for copy in writers.copies[1:]:
        writer.degenerate += copy.degenerate
        writer.explained += copy.explained
    writer.warn_degenerate()
    if not writers.chief:
        print(f"done: this worker's files are in {FLAGS.out_dir}; the chief lists the run")
        return
    outputs.finish()
    print(f"wrote {sum(os.path.isfile(p) for paths in files for p in paths)} files to "
          f"{FLAGS.out_dir}")


if __name__ == "__main__":
    from tfcaf.cli.launch import run
    run("visualize")
