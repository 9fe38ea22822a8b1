"""The one table of explanation methods: what each needs and how it runs.

Every caller (the engine, the binaries, evaluation, the demo) asks this
registry instead of branching on method names. Adding a method is one
compute function plus one `Method` entry in `METHODS`.

The binaries read `METHODS` before TensorFlow loads (flag checks,
`--help`), so this module imports no TensorFlow: the compute functions
import their TensorFlow code when first called.
"""

import collections
from dataclasses import dataclass
from typing import Callable

from tfcaf.errors import TfcafError


@dataclass(frozen=True)
class Method:
    """One explanation method.

    Attributes:
        name: the name users pass (`--method`, `explain(method=...)`).
        needs_logits: applies only to models whose output is class logits.
        uses_targets: explains given class ids on a logits model (default
            each image's top-1 class); on an embedding it explains the
            embedding itself, with no targets.
        iterative: solved by the L2-CAF optimiser, so it has iterations,
            losses and snapshots (GIF frames).
        needs_dense_gap_head: needs a `Dense(GlobalAveragePooling2D)` head
            after the split layer (CAM).
        compute: iterative methods: `(explainer, feature_maps (P, h, w, C),
            targets (P,) int32 or None, config) -> solver.Solution`;
            the others: `(explainer, feature_maps, targets) -> (P, h, w)`
            raw maps. Graph-safe (callable inside `tf.function`).
        description: one line for `--help` and tables.
    """
    name: str
    needs_logits: bool
    uses_targets: bool
    iterative: bool
    needs_dense_gap_head: bool
    compute: Callable
    description: str


def _l2caf(explainer, feature_maps, targets, config):
    return explainer.solve(feature_maps, targets, config)


def _cam(explainer, feature_maps, targets):
    from tfcaf.caf import baselines
    return baselines.cam(feature_maps, explainer.split.dense, targets)


def _gradient_baseline(function_name):
    """compute function of a gradient baseline (`baselines.<function_name>`),
    importing TensorFlow only when called."""
    def compute(explainer, feature_maps, targets):
        from tfcaf.caf import baselines
        return getattr(baselines, function_name)(explainer.gradient_head, feature_maps, targets)
    return compute


METHODS = collections.OrderedDict((m.name, m) for m in (
    Method("l2caf", needs_logits=False, uses_targets=False, iterative=True,
           needs_dense_gap_head=False, compute=_l2caf,
           description="class-oblivious L2-CAF (docs/method.md §1)"),
    Method("l2caf_specific", needs_logits=True, uses_targets=True, iterative=True,
           needs_dense_gap_head=False, compute=_l2caf,
           description="class-specific L2-CAF (docs/method.md §1)"),
    Method("cam", needs_logits=True, uses_targets=True, iterative=False,
           needs_dense_gap_head=True, compute=_cam,
           description="class activation maps, Zhou et al. 2016 (docs/method.md §2)"),
    Method("gradcam", needs_logits=False, uses_targets=True, iterative=False,
           needs_dense_gap_head=False, compute=_gradient_baseline("gradcam"),
           description="Grad-CAM, Selvaraju et al. 2017 (docs/method.md §2)"),
    Method("gradcampp", needs_logits=False, uses_targets=True, iterative=False,
           needs_dense_gap_head=False, compute=_gradient_baseline("gradcampp"),
           description="Grad-CAM++, Chattopadhay et al. 2018 (docs/method.md §2)"),
))


def method(name):
    """The `Method` called `name`; `TfcafError` listing the valid names."""
    if name not in METHODS:
        raise TfcafError(f"unknown method '{name}'; choose one of {', '.join(METHODS)}")
    return METHODS[name]
