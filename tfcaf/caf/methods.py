"""The one table of explanation methods: what each needs and how it runs.

Every caller (the engine, the binaries, evaluation, the demo) asks this
registry instead of branching on method names. Adding a method is one
compute function plus one `Method` entry in `METHODS`.

The binaries read `METHODS` before TensorFlow loads (flag checks,
`--help`), so this module imports no TensorFlow: the compute functions
import their TensorFlow code when first called.
"""

import collections
import importlib
from dataclasses import dataclass
from typing import Callable

from tfcaf.errors import TfcafError
from tfcaf.names import TARGET_KINDS

CLASSES, OUTPUT, SIMILARITY = TARGET_KINDS


@dataclass(frozen=True)
class Method:
    """One explanation method.

    Attributes:
        name: the name users pass (`--method`, `explain(method=...)`).
        targets: the kinds of target it explains (`tfcaf.caf.targets`),
            the default first: with no target given, class ids (each
            image's top-1) on a logits model if it takes them, else the
            output as a whole if it takes that; a method taking neither
            needs an explicit target on an embedding model.
        iterative: solved by the L2-CAF optimiser, so it has iterations,
            losses and snapshots (GIF frames).
        needs_dense_gap_head: needs a `Dense(GlobalAveragePooling2D)` head
            after the split layer (CAM).
        compute: iterative methods: `(explainer, feature_maps (P, h, w, C),
            objective, config) -> solver.Solution`; the others:
            `(explainer, feature_maps, objective) -> (P, h, w)` raw maps;
            `objective` is a `targets.Objective` (one row per problem).
            Graph-safe (callable inside `tf.function`).
        description: one line for `--help` and tables.
    """
    name: str
    targets: tuple
    iterative: bool
    needs_dense_gap_head: bool
    compute: Callable
    description: str

    @property
    def uses_targets(self):
        """Explains class ids on a logits model (default: each image's top-1)."""
        return CLASSES in self.targets

    @property
    def needs_logits(self):
        """Applies, with no explicit target, only to class logits."""
        return OUTPUT not in self.targets

    def default_target(self, output):
        """The kind explained when no target is given on a model whose
        output is `output` ("logits" | "embedding"); None: none applies."""
        if self.uses_targets and output == "logits":
            return CLASSES
        return OUTPUT if OUTPUT in self.targets else None


def _l2caf(explainer, feature_maps, targets, config):
    return explainer.solve(feature_maps, targets, config)


def _cam(explainer, feature_maps, targets):
    from tfcaf.caf import baselines
    return baselines.cam(feature_maps, explainer.split.dense, targets)


def _gradient_method(module_name, function_name):
    """compute function of a gradient method
    (`tfcaf.caf.<module_name>.<function_name>`), importing TensorFlow only
    when called."""
    def compute(explainer, feature_maps, targets):
        module = importlib.import_module(f"tfcaf.caf.{module_name}")
        return getattr(module, function_name)(explainer.gradient_head, feature_maps, targets)
    return compute


def _eigencam(explainer, feature_maps, targets):
    from tfcaf.caf import cams
    return cams.eigencam(feature_maps)


_ANY = (CLASSES, OUTPUT, SIMILARITY)
METHODS = collections.OrderedDict((m.name, m) for m in (
    Method("l2caf", targets=(OUTPUT,), iterative=True,
           needs_dense_gap_head=False, compute=_l2caf,
           description="class-oblivious L2-CAF (docs/method.md §1)"),
    Method("l2caf_specific", targets=(CLASSES, SIMILARITY), iterative=True,
           needs_dense_gap_head=False, compute=_l2caf,
           description="class-specific L2-CAF; with a Similarity target, raises the "
                       "similarity to a reference (docs/method.md §1)"),
    Method("cam", targets=(CLASSES,), iterative=False,
           needs_dense_gap_head=True, compute=_cam,
           description="class activation maps, Zhou et al. 2016 (docs/method.md §2)"),
    Method("gradcam", targets=_ANY, iterative=False,
           needs_dense_gap_head=False, compute=_gradient_method("baselines", "gradcam"),
           description="Grad-CAM, Selvaraju et al. 2017 (docs/method.md §2)"),
    Method("gradcampp", targets=_ANY, iterative=False,
           needs_dense_gap_head=False, compute=_gradient_method("baselines", "gradcampp"),
           description="Grad-CAM++, Chattopadhay et al. 2018 (docs/method.md §2)"),
    Method("xgradcam", targets=_ANY, iterative=False,
           needs_dense_gap_head=False, compute=_gradient_method("cams", "xgradcam"),
           description="XGrad-CAM, Fu et al. 2020 (docs/method.md §2)"),
    Method("hirescam", targets=_ANY, iterative=False,
           needs_dense_gap_head=False, compute=_gradient_method("cams", "hirescam"),
           description="HiResCAM, Draelos & Carin 2020 (docs/method.md §2)"),
    Method("layercam", targets=_ANY, iterative=False,
           needs_dense_gap_head=False, compute=_gradient_method("cams", "layercam"),
           description="LayerCAM, Jiang et al. 2021 (docs/method.md §2)"),
    Method("eigencam", targets=(OUTPUT,), iterative=False,
           needs_dense_gap_head=False, compute=_eigencam,
           description="EigenCAM, Muhammad & Yeasin 2020: first principal component of A, "
                       "no target (docs/method.md §2)"),
))


def method(name):
    """The `Method` called `name`; `TfcafError` listing the valid names."""
    if name not in METHODS:
        raise TfcafError(f"unknown method '{name}'; choose one of {', '.join(METHODS)}")
    return METHODS[name]
