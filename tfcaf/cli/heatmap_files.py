"""`bin/visualize`'s work on one batch of files: read, explain, write the
figure (.png), the raw map (.npy) and the convergence animation (.gif)."""

import dataclasses
import json
import logging
import os
from typing import NamedTuple

import numpy as np

from tfcaf import render
from tfcaf.caf import Explainer, SolverConfig, method as lookup_method
from tfcaf.caf.heatmaps import to_image_size
from tfcaf.data import read_image
from tfcaf.distribute.replicas import model_on
from tfcaf.errors import TfcafError
from tfcaf.metrics.degenerate import degenerate_maps, degenerate_warning

log = logging.getLogger("tfcaf.visualize")


def _imagenet_class_names():
    """ImageNet class names when Keras has the class index cached (it is
    downloaded by `decode_predictions`; tfcaf never fetches it), else None."""
    home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    path = os.path.join(home, "models", "imagenet_class_index.json")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        index = json.load(f)
    return [index[str(k)][1] for k in range(len(index))]


def _softmax(logits):
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


class HeatmapWriter:
    """Explains batches of image files with one model, method and layer.

    Args:
        model: Keras model taking RGB pixels (B, H, W, 3) in [0, 255] (as
            `tfcaf.applications.load_model` returns them).
        method: a name of `tfcaf.caf.METHODS` the model supports.
        layer: layer to split at (None: the last 4-D layer).
        input_size: (H, W) the images are resized to for the model.
        gif_every: iterations between animation frames (0: no animation).
        solver: `SolverConfig` of iterative methods (ignored by the others).
        output: "logits" | "embedding" (None: guessed, see `Explainer`).
        method_options: the options of a method without a solver
            (`Method.options`; None: its defaults).
        png: write each map's figure (False: the raw maps alone).

    Attributes:
        solver: the resolved solver's settings (`SolverConfig.describe()`),
            None for methods without iterations.
        degenerate, explained: constant or non-finite raw maps so far, and
            maps written so far (`warn_degenerate`).
    """

    def __init__(self, model, method, layer, input_size, gif_every, solver=SolverConfig(),
                 output=None, method_options=None, png=True):
        self.model, self._settings = model, (method, layer, input_size, gif_every, solver,
                                              output, method_options, png)
        self.png = png
        self.explainer = Explainer(model, layer=layer, output=output)
        reason = self.explainer.supports(method)
        if reason:
            raise TfcafError(f"--method={method} does not apply to this model: {reason}")
        self.method, self.input_size, self.gif_every = method, input_size, gif_every
        self.options, self.solver = dict(method_options or {}), None
        if lookup_method(method).iterative:
            # Resolved now, so that a refused option fails before any file.
            resolved = self.explainer.resolve(solver)
            self.solver = resolved.describe()
            self.options = dataclasses.asdict(
                dataclasses.replace(solver, snapshot_every=gif_every or solver.snapshot_every))
            log.info("%s at layer '%s', solver %s", method, self.layer,
                     ", ".join(f"{k}={v}" for k, v in sorted(self.solver.items())))
        self.degenerate = self.explained = 0
        num_classes = model.output_shape[-1]
        self.class_names = _imagenet_class_names() if num_classes == 1000 else None

    @property
    def layer(self):
        return self.explainer.layer

    def replicate(self, device):
        """This writer with a copy of the model on `device`: a replica of a
        distributed run (`tfcaf.distribute.replicas`)."""
        return HeatmapWriter(model_on(self.model, device), *self._settings)

    def _read(self, path):
        image = read_image(path)
        height, width = image.shape[:2]
        if min(height, width) < min(self.input_size) // 4:
            log.warning("warning: image '%s' is %dx%d px, enlarged to the model's %dx%d "
                        "input: its heatmap says little", path, width, height,
                        self.input_size[1], self.input_size[0])
        return image

    def write_batch(self, paths, stems, targets, write):
        """Explains the files `paths` and writes `stem[_tK].{png,npy,gif}`.

        Args:
            paths: B image files.
            stems: B output paths without extension.
            targets: class ids explained for every image, or None (top-1).
            write: `write(path, writer)` runs `writer(file)` for the file
                `path` (`tfcaf.outputs.OutputSet.write`).
        """
        images = [self._read(p) for p in paths]
        pixels = np.stack([render.resize(image, self.input_size) for image in images])
        inputs = pixels.astype(np.float32)
        batch_targets = None if targets is None else np.tile(np.asarray(targets)[None],
                                                             (len(paths), 1))
        explanation = self.explainer.explain(inputs, self.method, batch_targets, **self.options)
        flagged = degenerate_maps(explanation.maps)
        self.degenerate += int(flagged.sum())
        self.explained += flagged.size
        probabilities = None
        if self.explainer.output == "logits":
            probabilities = _softmax(self.explainer.forward(inputs)[1].numpy())
        for i, (image, stem) in enumerate(zip(images, stems)):
            shown = render.resize(image, render.display_size(*image.shape[:2]))
            scores = None if probabilities is None else probabilities[i]
            for suffix, problem in _problems(explanation, i, targets):
                self._write_problem(stem + suffix, shown, problem, scores, write)

    def warn_degenerate(self):
        """Logs one warning line if any map so far was constant or
        non-finite (its heatmap is all zeros)."""
        if self.degenerate:
            log.warning("warning: %s", degenerate_warning(self.method, self.degenerate,
                                                          self.explained))

    def _write_problem(self, stem, shown, problem, scores, write):
        size = shown.shape[:2]
        heatmap = to_image_size(problem.raw[None], size)[0].numpy()
        title = self._title(problem.target, scores, problem.iterations, problem.loss)
        if self.png:
            write(stem + ".png",
                  lambda p: render.write_png(p, render.figure(shown, heatmap, title)))
        write(stem + ".npy", lambda p: np.save(p, problem.raw))
        if problem.snapshots is None:
            return
        # The batch records frames until its slowest problem stops; this
        # one's map no longer changes after its own last iteration.
        used = -(-int(problem.iterations) // self.gif_every)
        frames = to_image_size(np.concatenate([problem.snapshots[:used], problem.raw[None]]),
                               size).numpy()
        captions = [f"{self.method} | iteration {k * self.gif_every} | loss {float(loss):.4g}"
                    for k, loss in enumerate(problem.snapshot_losses[:used])]
        captions.append(f"{self.method} | iteration {int(problem.iterations)} (final) | "
                        f"loss {float(problem.loss):.4g}")
        write(stem + ".gif", lambda p: render.write_gif(p, shown, frames, captions))

    def _title(self, target, scores, iterations, loss):
        """"method | class K name p=0.87 | layer L | N iterations, loss X"."""
        parts = [self.method]
        if scores is not None:
            shown = int(np.argmax(scores)) if target is None else int(target)
            name = f" {self.class_names[shown]}" if self.class_names else ""
            label = "top-1 class" if target is None else "class"
            parts.append(f"{label} {shown}{name} p={scores[shown]:.2f}")
        else:
            parts.append("embedding")
        parts.append(f"layer {self.layer}")
        if iterations is not None:
            parts.append(f"{int(iterations)} iterations, loss {float(loss):.4g}")
        return " | ".join(parts)


class _Problem(NamedTuple):
    """One explained (image, target) of an `Explanation`; the solver's
    fields are None for methods without iterations."""
    raw: np.ndarray
    target: int | None
    iterations: int | None
    loss: float | None
    snapshots: np.ndarray | None
    snapshot_losses: np.ndarray | None


def target_suffixes(targets):
    """The file-name suffix of each explained target: "" for the top-1
    class, else `_tK` per class id K (distinct ids give distinct names)."""
    return [""] if targets is None else [f"_t{int(t)}" for t in targets]


def output_files(stem, targets, gif, png=True):
    """Every file `write_batch` may write for one image: `stem[_tK].npy`
    and, with `png`, `.png` and, with `gif`, `.gif`, for each target."""
    extensions = ((".png",) if png else ()) + (".npy",) + ((".gif",) if gif else ())
    return [stem + suffix + ext for suffix in target_suffixes(targets) for ext in extensions]


def _problems(explanation, index, targets):
    """[(file suffix, `_Problem`)] for image `index`: one per explained target."""
    def problem(target, *key):
        def pick(array):
            return None if array is None else array[(index,) + key]
        return _Problem(pick(explanation.maps), target, pick(explanation.iterations),
                        pick(explanation.losses), pick(explanation.snapshots),
                        pick(explanation.snapshot_losses))
    suffixes = target_suffixes(targets)
    if explanation.targets is None or np.ndim(explanation.targets) == 1:
        target = None if explanation.targets is None or targets is None \
            else explanation.targets[index]
        return [(suffixes[0], problem(target))]
    return [(suffix, problem(t, j)) for j, (suffix, t) in enumerate(zip(suffixes, targets))]
