"""The one table of evaluation metrics: what each needs, computes and reports.

As `tfcaf.caf.METHODS` is for methods: a metric is one library function on
plain arrays plus one `Metric` entry here. `bin/evaluate --metric`, its
`--help`, metrics.json, report.md and the demo read this table; adding a
metric is a function and an entry (`register`), nothing else (bin/evaluate's
older flags, --cam_threshold, --pointing_tolerance, ..., are `EvalConfig`
fields that set the options of their metrics).

The binaries read the names before TensorFlow loads, so this module imports
no TensorFlow: functions are named as "module:function" and imported when
first called.
"""

import dataclasses
import importlib
from typing import NamedTuple

from tfcaf.errors import TfcafError

# Scopes: "maps": once per method and batch, from its heatmaps; "outputs":
# once per run, from the model's outputs (retrieval); "model": its own run
# over a model whose weights it changes (the sanity check).
SCOPES = ("maps", "outputs", "model")
# What a "maps" metric may need beyond the maps; `check_needs` tells the
# user which dataset or model lacks it before any image is run.
NEEDS = ("boxes", "masks", "scores", "explain", "embedding", "keras_model")
FAMILIES = ("localization", "retrieval", "faithfulness", "robustness", "complexity",
            "sanity")


class MetricBatch(NamedTuple):
    """What a "maps" metric may read from one batch of one method
    (a metric's `inputs` name these fields).

    Attributes:
        images: (N, H, W, 3) float32 raw pixels, as the model takes them.
        targets: (N,) int32 class ids explained (the labels).
        boxes: (N, M, 4) float32 GT boxes, -1 rows padding.
        masks: (N, H, W) uint8 GT masks: 1 foreground, 0 background, 255
            ignored (wsolevaluation's convention), or None.
        heatmaps: (N, H, W) float32 in [0, 1] at image size.
        maps: (N, h, w) raw maps.
        predict: (B, H, W, 3) -> (B, K) logits or (B, D) embeddings.
        substrate: (3,) RGB the model's preprocessing maps to zero.
        embedding: True for retrieval nets.
        explain: (images (B, H, W, 3), targets (B,)) -> heatmaps (B, H, W)
            of the method evaluated.
        batch_size: images per model call.
        first_image: position in the pass of the batch's first image: a
            metric's random draws are seeded by (its seed, first_image), so
            no two batches draw the same.
        image_size: (H, W).
    """
    images: object
    targets: object
    boxes: object
    masks: object
    heatmaps: object
    maps: object
    predict: object
    substrate: object
    embedding: bool
    explain: object
    batch_size: int
    first_image: int
    image_size: tuple


@dataclasses.dataclass(frozen=True)
class Metric:
    """One evaluation metric.

    Attributes:
        name: the `--metric` name; `tfcaf.metrics.<name>` is `function`.
        family: one of `FAMILIES` (the demo report's tables group by it).
        description: one line for `--help` and docs.
        function: "module:function", the library function on arrays.
        scope: one of `SCOPES`.
        inputs: `MetricBatch` fields passed to the batch function, as
            "argument" or "argument=field" (scope "maps"; "outputs":
            embeddings, labels).
        options: the metric's settings and defaults, passed by name
            (an `EvalConfig` field of the same name overrides the default).
        values: the per-image keys (N, ...) of the batch function's result
            kept and concatenated over the pass (or per-batch rows (1, ...)
            that `summarize` adds up, e.g. PxAP's histograms).
        columns: report column -> per-image key averaged over images
            (when `summarize` is None).
        summarize: "module:function" `(values, correct, options) ->
            {column: float}` (options: the resolved dict) for metrics that
            are no mean over images
            (`correct`: (N,) bool top-1 correctness).
        batch_function: "module:function" run per batch when `function`
            itself returns a whole-set figure (e.g. PxAP's histograms).
        curves: name -> per-image (N, S) key whose mean curve is plotted.
        lower_is_better: columns where a lower value is better.
        needs: of `NEEDS`.
        protocol: the report's sentence, `str.format`ted with the options
            and {score} (what the model's output is scored by); or one per
            value of the metric's "protocol" option.
        percent: columns reported in %, the others as plain numbers.
        config_fields: option -> the `EvalConfig` field (bin/evaluate flag)
            that sets it, where the names differ.
        headline: the columns a summary table shows (default: `columns`).
    """
    name: str
    family: str
    description: str
    function: str
    scope: str = "maps"
    inputs: tuple = ()
    options: dict = dataclasses.field(default_factory=dict)
    values: tuple = ()
    columns: dict = dataclasses.field(default_factory=dict)
    summarize: str | None = None
    batch_function: str | None = None
    curves: dict = dataclasses.field(default_factory=dict)
    lower_is_better: tuple = ()
    needs: tuple = ()
    protocol: str | dict = ""
    percent: tuple = ()
    config_fields: dict = dataclasses.field(default_factory=dict)
    headline: tuple = ()

    def __post_init__(self):
        fields = set(MetricBatch._fields)
        problems = ([f"scope {self.scope!r}"] if self.scope not in SCOPES else []) + \
            ([f"family {self.family!r}"] if self.family not in FAMILIES else []) + \
            [f"need {n!r}" for n in self.needs if n not in NEEDS] + \
            [f"input {i!r}" for i in self.inputs
             if self.scope == "maps" and i.split("=")[-1] not in fields] + \
            [f"config field for {k!r}" for k in self.config_fields if k not in self.options]
        if problems:
            raise TypeError(f"metric {self.name!r}: unknown {', '.join(problems)}")

    @property
    def shown(self):
        """The columns a summary table shows."""
        return tuple(self.headline or self.columns)

    def arguments(self, batch, options, function):
        """Keyword arguments of the batch function `function` for
        `MetricBatch` `batch`: its `inputs`, and the options it takes (the
        others, e.g. iou's δ, are for `summarize`)."""
        import inspect
        named = dict(item.split("=") if "=" in item else (item, item) for item in self.inputs)
        parameters = inspect.signature(function).parameters
        passes_on = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
        taken = {k: v for k, v in options.items() if passes_on or k in parameters}
        if "seed" in taken:
            taken["seed"] = [taken["seed"], batch.first_image]
        return {**{argument: getattr(batch, field) for argument, field in named.items()},
                **taken}

    def resolve_options(self, config=None, given=None):
        """`options` with an `EvalConfig` field of the same name, then
        `given` ({option: value}), taking precedence over the defaults."""
        unknown = set(given or {}) - set(self.options)
        if unknown:
            raise TfcafError(f"metric {self.name}: unknown option(s) {', '.join(sorted(unknown))}"
                             f"; it takes {', '.join(self.options) or 'none'}")
        resolved = {k: getattr(config, self.config_fields.get(k, k), v)
                    if config is not None else v for k, v in self.options.items()}
        return {**resolved, **(given or {})}


def load(reference):
    """The object named by "module:function"."""
    module, name = reference.split(":")
    return getattr(importlib.import_module(module), name)


def summary(metric, values, correct, options):
    """{column: float} of a pass's concatenated per-image `values`: the
    float64 mean over the images whose value is defined (not NaN: e.g. the
    correlation of a constant map, the entropy of an all-zero map, a drop
    relative to a cosine ≤ 0: `undefined`)."""
    import numpy as np
    if metric.summarize:
        return load(metric.summarize)(values, correct, options)
    means = {}
    for column, key in metric.columns.items():
        column_values = np.asarray(values[key], np.float64)
        defined = np.isfinite(column_values)
        means[column] = float(np.mean(column_values[defined])) if defined.any() else float("nan")
    return means


def undefined(metric, values):
    """{column: number of images without a value} (only columns with some)."""
    import numpy as np
    counts = {column: int((~np.isfinite(np.asarray(values[key], np.float64))).sum())
              for column, key in metric.columns.items()}
    return {column: count for column, count in counts.items() if count}


METRICS = {}


def register(metric):
    """Adds `metric` to `METRICS` (a name already there is refused)."""
    if metric.name in METRICS:
        raise TfcafError(f"metric {metric.name!r} is already registered")
    METRICS[metric.name] = metric
    return metric


def metric(name):
    """The registered `Metric` called `name`."""
    if name not in METRICS:
        raise TfcafError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")
    return METRICS[name]


def names(family=None, scope=None):
    """Registered metric names, optionally of one family or scope."""
    return tuple(n for n, m in METRICS.items()
                 if family in (None, m.family) and scope in (None, m.scope))


importlib.import_module("tfcaf.metrics.entries")
