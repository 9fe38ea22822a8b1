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
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from tfcaf.caf.option_rules import ArrayShape, AtLeast, Choice, value_problem
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
        compute: `(MethodCall) -> ` raw maps (P, h, w) at feature-map size
            or (P, H, W) at input size; for iterative methods a
            `solver.Solution`. Graph-safe (callable inside `tf.function`).
        description: one line for `--help` and tables.
        options: the method's own options and their defaults, named as in
            its reference implementation (iterative methods take the
            `SolverConfig` fields instead).
        option_rules: what an option accepts where its default's type
            does not say (`option_rules`): `Choice` for every text option,
            `ArrayShape` for every array option (default None), `AtLeast`
            for an integer whose least value is not 1.
        many_passes: runs the model or head once per channel, step, patch,
            noise sample or mask (tens to thousands of passes per image),
            where the others need one forward (and backward) pass.
        reads_feature_maps: computes from the split layer's feature maps;
            False for the input-space methods, which run the whole model
            on the images (`explain` then skips the features).
        model_maps: the name of a method by which a model that defines it
            computes this method's maps itself, `(images (P, H, W, C),
            classes (P,) int32) -> (P, h, w)`; it then applies whatever
            the head (an ACoL model's CAM is its fused branch maps,
            docs/method.md §3).
    """
    name: str
    targets: tuple
    iterative: bool
    needs_dense_gap_head: bool
    compute: Callable
    description: str
    options: dict = field(default_factory=dict)
    many_passes: bool = False
    option_rules: dict = field(default_factory=dict)
    reads_feature_maps: bool = True
    model_maps: str | None = None

    def __post_init__(self):
        # A text or array option without its rule could not be checked:
        # refuse the entry itself, when the registry is built.
        for name, default in self.options.items():
            rule = self.option_rules.get(name)
            integer = isinstance(default, int) and not isinstance(default, bool)
            if (default is None) != isinstance(rule, ArrayShape) or \
                    isinstance(default, str) != isinstance(rule, Choice) or \
                    (isinstance(rule, Choice) and default not in rule.values) or \
                    (isinstance(rule, AtLeast) and not (integer and default >= rule.least)):
                raise TypeError(f"method {self.name!r}: option {name}={default!r} has rule "
                                f"{rule!r}")
        unknown = set(self.option_rules) - set(self.options)
        if unknown:
            raise TypeError(f"method {self.name!r}: rules of no option: {sorted(unknown)}")

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


class MethodCall(NamedTuple):
    """What a method is given, one row per problem (an image and a target).

    Attributes:
        explainer: the `Explainer`: `.split` (features, head), the
            `.gradient_head`, `.forward` (the whole model, logits).
        feature_maps: A, (P, h, w, C) float32 at the split layer.
        objective: what is explained, a `targets.Objective`.
        images: (P, H, W, C) float32 images as the model takes them.
        options: iterative methods: the `SolverConfig`; the others: a dict
            of the method's `options`, defaults filled in.
        extras: at a token layer with class or register tokens, the (P, h,
            w, E) channels they are packed in (`token_grid`); `feature_maps`
            are then the patch channels alone. None elsewhere.
    """
    explainer: object
    feature_maps: object
    objective: object
    images: object
    options: object
    extras: object = None

    def head(self, gradient=False):
        """The head (`gradient`: the `gradient_head`) as a function of (R,
        h, w, C) feature maps of these problems, R a multiple of P with
        each problem's rows together: their extra tokens go beside them."""
        return self.explainer.head_beside(self.extras, gradient)


def _l2caf(call):
    return call.explainer.solve(call.feature_maps, call.objective, call.options)


def _cam(call):
    from tfcaf.caf import baselines
    return baselines.cam(call.feature_maps, call.explainer.split.dense, call.objective)


def _gradient_method(module_name, function_name):
    """compute function of a gradient method
    `tfcaf.caf.<module_name>.<function_name>(head, A, objective)`,
    importing TensorFlow only when called."""
    def compute(call):
        module = importlib.import_module(f"tfcaf.caf.{module_name}")
        return getattr(module, function_name)(call.head(gradient=True), call.feature_maps,
                                              call.objective)
    return compute


def _eigencam(call):
    from tfcaf.caf import cams
    return cams.eigencam(call.feature_maps)


def _call_method(module_name, function_name):
    """compute function `tfcaf.caf.<module_name>.<function_name>(call)`,
    importing TensorFlow only when called."""
    def compute(call):
        module = importlib.import_module(f"tfcaf.caf.{module_name}")
        return getattr(module, function_name)(call)
    return compute


_ANY = (CLASSES, OUTPUT, SIMILARITY)
# xplique's channel reducers (`reducer=`) of the input-space maps.
REDUCERS = Choice(("mean", "max", "min", "sum"))
# "trapezoid": the trapezoid rule on `steps` points (xplique); the others
# are captum's `method=` values, with captum's step sizes (docs/method.md §2).
APPROXIMATION_METHODS = ("trapezoid", "gausslegendre", "riemann_trapezoid", "riemann_left",
                         "riemann_right", "riemann_middle")
METHODS = collections.OrderedDict((m.name, m) for m in (
    Method("l2caf", targets=(OUTPUT,), iterative=True,
           needs_dense_gap_head=False, compute=_l2caf,
           description="class-oblivious L2-CAF (docs/method.md §1)"),
    Method("l2caf_specific", targets=(CLASSES, SIMILARITY), iterative=True,
           needs_dense_gap_head=False, compute=_l2caf,
           description="class-specific L2-CAF; with a Similarity target, raises the "
                       "similarity to a reference (docs/method.md §1)"),
    Method("cam", targets=(CLASSES,), iterative=False,
           needs_dense_gap_head=True, compute=_cam, model_maps="class_activation_maps",
           description="class activation maps, Zhou et al. 2016 (docs/method.md §2); an "
                       "ACoL model's fused branch maps (§3)"),
    Method("gradcam", targets=_ANY, iterative=False,
           needs_dense_gap_head=False, compute=_gradient_method("baselines", "gradcam"),
           description="Grad-CAM, Selvaraju et al. 2017 (docs/method.md §2)"),
    Method("gradcampp", targets=_ANY, iterative=False,
           needs_dense_gap_head=False, compute=_call_method("baselines", "gradcampp_call"),
           options={"variant": "pytorch-grad-cam"},
           option_rules={"variant": Choice(("pytorch-grad-cam", "tf-keras-vis", "xplique"))},
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
    Method("scorecam", targets=(CLASSES, SIMILARITY), iterative=False,
           needs_dense_gap_head=False, compute=_call_method("perturbation", "scorecam"),
           options={"batch_size": 16, "max_N": 0, "variant": "pytorch-grad-cam"},
           option_rules={"max_N": AtLeast(0),
                         "variant": Choice(("pytorch-grad-cam", "tf-keras-vis"))},
           many_passes=True,
           description="Score-CAM, Wang et al. 2020: the target's scores of the images "
                       "masked by each upsampled channel (docs/method.md §2)"),
    Method("ablationcam", targets=(CLASSES, SIMILARITY), iterative=False,
           needs_dense_gap_head=False, compute=_call_method("perturbation", "ablationcam"),
           options={"batch_size": 32},
           many_passes=True,
           description="Ablation-CAM, Desai & Ramaswamy 2020: the score's relative drop "
                       "when each channel is zeroed (docs/method.md §2)"),
    Method("saliency", targets=_ANY, iterative=False, reads_feature_maps=False,
           needs_dense_gap_head=False, compute=_call_method("input_space", "saliency"),
           options={"reducer": "max"}, option_rules={"reducer": REDUCERS},
           description="Saliency, Simonyan et al. 2014: |∂y/∂x| reduced over colours "
                       "(max), at input size (docs/method.md §2)"),
    Method("integrated_gradients", targets=_ANY, iterative=False,
           reads_feature_maps=False, needs_dense_gap_head=False,
           compute=_call_method("input_space", "integrated_gradients"),
           options={"steps": 50, "baseline_value": 0.0, "approximation_method": "trapezoid",
                    "reducer": "mean"},
           option_rules={"approximation_method": Choice(APPROXIMATION_METHODS),
                         "reducer": REDUCERS},
           many_passes=True,
           description="Integrated Gradients, Sundararajan et al. 2017, at input size "
                       "(docs/method.md §2)"),
    Method("occlusion", targets=(CLASSES, SIMILARITY), iterative=False,
           reads_feature_maps=False, needs_dense_gap_head=False,
           compute=_call_method("input_space", "occlusion"),
           options={"patch_size": 3, "patch_stride": 3, "occlusion_value": 0.0},
           many_passes=True,
           description="Occlusion, Zeiler & Fergus 2014: score drops of occluded patches, "
                       "at input size (docs/method.md §2)"),
    Method("smoothgrad", targets=_ANY, iterative=False, reads_feature_maps=False,
           needs_dense_gap_head=False, compute=_call_method("input_space", "smoothgrad"),
           options={"nb_samples": 50, "noise": 0.2, "noise_draws": None, "seed": 0,
                    "abs": False, "reducer": "mean"},
           option_rules={"noise_draws": ArrayShape((("P", "N", "H", "W", "C"),
                                                    ("N", "H", "W", "C"))),
                         "seed": AtLeast(0), "reducer": REDUCERS},
           many_passes=True,
           description="SmoothGrad, Smilkov et al. 2017: gradients at noisy copies, at "
                       "input size (docs/method.md §2)"),
    Method("rise", targets=(CLASSES, SIMILARITY), iterative=False,
           reads_feature_maps=False, needs_dense_gap_head=False,
           compute=_call_method("input_space", "rise"),
           options={"nb_samples": 4000, "grid_size": 7, "preservation_probability": 0.5,
                    "masks": None, "seed": 0, "mask_value": 0.0, "variant": "eclique"},
           option_rules={"masks": ArrayShape((("N", "H", "W"), ("P", "N", "H", "W"))),
                         "seed": AtLeast(0), "variant": Choice(("eclique", "xplique"))},
           many_passes=True,
           description="RISE, Petsiuk et al. 2018: scores of randomly masked copies weight "
                       "the masks, at input size (docs/method.md §2)"),
))


def method_options(method, options):
    """The options `method` runs with: its defaults updated with `options`
    (dict); `TfcafError` naming an option it does not take or a value its
    default's type and rule (`Method.option_rules`) refuse. Array options
    are checked against the images (`array_problem`)."""
    unknown = sorted(set(options) - set(method.options))
    if unknown:
        valid = ", ".join(sorted(method.options)) or "none"
        raise TfcafError(f"method '{method.name}': unknown option(s) {', '.join(unknown)} "
                         f"(valid: {valid})")
    values = dict(method.options, **options)
    for name, value in values.items():
        problem = value_problem(method.options[name], value, method.option_rules.get(name))
        if problem:
            raise TfcafError(f"method '{method.name}': option {name}={value!r} {problem}")
    return values


def array_problem(method, options, image_shape):
    """None, or one line saying which array option of `method` (its
    `ArrayShape` rules) does not fit images of (P, H, W, C) `image_shape`.

    Args:
        method: a `Method`.
        options: its options (`method_options`); arrays as numpy takes
            them (arrays, tensors, nested lists).
        image_shape: (P, H, W, C) of the images, one row per problem.
    """
    import numpy as np  # only here: the flag checks need no numpy
    for name, rule in method.option_rules.items():
        value = options.get(name)
        if not isinstance(rule, ArrayShape) or value is None:
            continue
        shape = tuple(np.shape(value))
        if not rule.accepts(shape, image_shape):
            return (f"{method.name}: {name} must be {rule.describe(image_shape)} for these "
                    f"images; got {shape}")
    return None


def method(name):
    """The `Method` called `name`; `TfcafError` listing the valid names."""
    if name not in METHODS:
        raise TfcafError(f"unknown method '{name}'; choose one of {', '.join(METHODS)}")
    return METHODS[name]
