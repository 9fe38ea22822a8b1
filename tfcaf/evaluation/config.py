"""`EvalConfig`: every setting of one evaluation run (`bin/evaluate`'s flags).

Field names are the flag names, so a validation error names the flag the
user typed (`--cam_threshold must be in [0, 1], got 2`).
"""

import dataclasses

from tfcaf.errors import TfcafError
from tfcaf.metrics import registry
from tfcaf.names import BOX_PROTOCOLS

POINTING_TOLERANCE = registry.metric("pointing_game").options["tolerance"]


def _sequence(value):
    return (value,) if isinstance(value, str) else tuple(value)


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Settings of `tfcaf.evaluation.evaluate`.

    Args:
        metrics: names of registered metrics (`tfcaf.metrics.registry`).
        methods: heatmap methods (those that do not apply to the model are
            skipped with a warning).
        cam_threshold: τ in [0, 1] of the box at a fixed threshold (top-1 /
            GT-known localization).
        iou_threshold: IoU in (0, 1] of a correct box.
        box_protocol: one of `BOX_PROTOCOLS`.
        max_images: evaluate an evenly spaced subset of this size (None: all).
        batch_size: images per batch.
        nmi_inits: K-means initialisations of NMI (10 as in the literature).
        faithfulness_step: pixels removed/inserted per deletion/insertion
            step (None: the image width).
        pointing_tolerance: pixels by which the pointing game enlarges each
            ground-truth box on every side (15 as in Zhang et al.; smaller
            for small images, where 15 px rarely misses).
        sanity_images: images of the randomisation sanity check.
        sanity_stages: layers randomised, from the output down.
        sanity_cascading: True: cumulative randomisation; False: one layer
            at a time.
        seed: seed of K-means, of the randomisation and of noise baselines.
        metric_options: {metric: {option: value}} overriding a metric's
            defaults (`Metric.options`; the fields above set those of the
            same name).
    """
    metrics: tuple = ("iou",)
    methods: tuple = ("l2caf",)
    cam_threshold: float = 0.2
    iou_threshold: float = 0.5
    box_protocol: str = "wsolevaluation"
    max_images: int | None = None
    batch_size: int = 32
    nmi_inits: int = 10
    faithfulness_step: int | None = None
    pointing_tolerance: int = POINTING_TOLERANCE
    sanity_images: int = 16
    sanity_stages: int = 6
    sanity_cascading: bool = True
    seed: int = 0
    metric_options: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        # Accept lists and single names; the frozen dataclass stores tuples.
        object.__setattr__(self, "metrics", _sequence(self.metrics))
        object.__setattr__(self, "methods", _sequence(self.methods))

    def with_metric_options(self):
        """The config with every `metric_options` value that sets one of its
        own fields (the sanity check's sizes, iou's τ, the pointing game's
        tolerance, ...) written into that field, so that all that reads the
        field sees it; `TfcafError` when two metrics set one differently."""
        fields, set_by = {f.name for f in dataclasses.fields(self)}, {}
        for name, given in self.metric_options.items():
            metric = registry.metric(name)
            for option, value in given.items():
                field = metric.config_fields.get(option, option)
                if field in fields and field != "metric_options":
                    if field in set_by and set_by[field][1] != value:
                        raise TfcafError(f"--metric_options: {set_by[field][0]} and "
                                         f"{name}.{option} set {field} differently")
                    set_by[field] = (f"{name}.{option}", value)
        return dataclasses.replace(self, **{k: v for k, (_, v) in set_by.items()})

    def validate(self):
        """Raises `TfcafError` naming the first bad field as its flag."""
        names = registry.names()
        unknown = [m for m in self.metrics if m not in names]
        if unknown:
            raise TfcafError(f"--metric: unknown {', '.join(unknown)}; "
                             f"choose from {', '.join(names)}")
        if not self.metrics:
            raise TfcafError(f"--metric is empty; choose from {', '.join(names)}")
        for name, given in self.metric_options.items():
            if name not in self.metrics:
                raise TfcafError(f"--metric_options: metric {name!r} is not in --metric")
            registry.metric(name).resolve_options(self, given)
        if self.box_protocol not in BOX_PROTOCOLS:
            raise TfcafError(f"--box_protocol must be one of {', '.join(BOX_PROTOCOLS)}, "
                             f"got '{self.box_protocol}'")
        if not 0.0 <= self.cam_threshold <= 1.0:
            raise TfcafError(f"--cam_threshold must be in [0, 1], got {self.cam_threshold:g}")
        if not 0.0 < self.iou_threshold <= 1.0:
            raise TfcafError(f"--iou_threshold must be in (0, 1], got {self.iou_threshold:g}")
        for name in ("batch_size", "nmi_inits", "sanity_images", "sanity_stages"):
            _check_integer(name, getattr(self, name))
        for name in ("max_images", "faithfulness_step"):
            if getattr(self, name) is not None:
                _check_integer(name, getattr(self, name))
        _check_integer("pointing_tolerance", self.pointing_tolerance, minimum=0)
        return self


def _check_integer(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise TfcafError(f"--{name} must be an integer >= {minimum}, got {value!r}")
