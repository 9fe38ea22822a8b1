"""Public entry point: `explain(model, images, method=...)` and `Explainer`."""

import numbers
import weakref
from dataclasses import fields

import numpy as np
import tensorflow as tf

from tfcaf.caf import filters, finite, heatmaps, objective, output_kind
from tfcaf.caf.explanation import Explanation
from tfcaf.caf.methods import MethodCall, array_problem, method as lookup_method, method_options
from tfcaf.caf.solver import Solution, SolverConfig, best_starts
from tfcaf.caf.split import check_model, split_model
from tfcaf.caf.targets import SIMILARITY, Objective, Similarity, as_objective, \
    class_id_matrix, similarity_references
from tfcaf.errors import TfcafError

_SOLVER_OPTIONS = frozenset(f.name for f in fields(SolverConfig))


class Explainer:
    """Every method of `METHODS` for one model split at one layer.

    Build once and call `explain` many times: the split and the compiled
    solver are reused. `forward`, `solve` and `raw_maps` are the graph-safe
    pieces `explain` is made of (the SavedModel export calls them inside
    its own `tf.function`s).

    Args:
        model: functional/Sequential Keras model taking (B, H, W, C) images
            as it expects them (preprocessed as the model needs).
        layer: layer to split at; default the last 4-D layer that allows it.
        output: "logits" or "embedding"; default guessed: "embedding"
            when the final leaf layer is an L2 normalisation, whatever
            layer computes it, or is named like an embedding
            (`output_kind`); the guess is logged.
    """

    def __init__(self, model, layer=None, output=None):
        output_kind.validate(output)
        self.model = model
        self.split = split_model(model, layer)
        self.output = output_kind.resolve(model, output, self.split.final)
        self.input_shape = tuple(model.input_shape)
        # The head whose output gradients Grad-CAM(++) explain. Through a
        # final L2 normalisation e·stop_gradient(e) has zero gradient, so
        # there it is the head up to the embedding before the normalisation.
        self.gradient_head = self.split.head
        if self.output == "embedding" and \
                self.split.final.computes == output_kind.L2_NORMALIZE:
            self.gradient_head = split_model(model, self.split.layer, unnormalized=True).head
        self._forward = tf.function(self._forward_graph, reduce_retracing=True)
        self._solvers = {
            False: tf.function(self._solve_graph, reduce_retracing=True),
            True: tf.function(self._solve_graph, reduce_retracing=True, jit_compile=True)}
        self._raw_map_functions = {}
        self._configs = {}

    @property
    def layer(self):
        return self.split.layer

    def supports(self, method_name, target_kind=None):
        """None when `method_name` applies to this model (explaining a
        target of `target_kind`, a `targets` kind; None: its default),
        else a one-line reason."""
        try:
            method = lookup_method(method_name)
        except TfcafError as err:
            return str(err)
        if target_kind is not None and target_kind not in method.targets:
            return (f"explains {' or '.join(method.targets)} targets, not a {target_kind} "
                    "target")
        if target_kind is None and method.default_target(self.output) is None:
            other = " or a Similarity target" if SIMILARITY in method.targets else ""
            return f"needs class logits{other}, but the model's output is an embedding"
        if method.needs_dense_gap_head and self.split.dense is None and \
                self.model_maps(method) is None:
            return (f"needs a Dense(GlobalAveragePooling2D) head after layer "
                    f"'{self.layer}'; this head is different")
        return None

    def model_maps(self, method):
        """The model's own maps function for the `Method` `method`
        (`Method.model_maps`), or None."""
        return method.model_maps and getattr(self.model, method.model_maps, None)

    def takes_targets(self, method_name):
        """Whether `method_name` explains class ids on this model (else it
        explains the output as a whole and takes no targets)."""
        return lookup_method(method_name).uses_targets and self.output == "logits"

    def forward(self, images):
        """(feature_maps (B, h, w, C) float32, outputs (B, K)) for (B, H, W, C)
        images; outputs are logits (a final softmax is left out).

        Raises:
            finite.NonFiniteError: when run eagerly, if an image's features
                or outputs are NaN or infinite (in a graph they pass
                through; see `finite.problem_status`).
        """
        feature_maps, outputs = self._forward(images)
        if tf.executing_eagerly():
            finite.require_finite_forward(images, feature_maps, outputs, self.layer)
        return feature_maps, outputs

    def _forward_graph(self, images):
        feature_maps = tf.cast(self.split.features(images, training=False), tf.float32)
        return feature_maps, self.split.head(feature_maps, training=False)

    def resolve(self, config):
        """`config` validated, with optimizer="auto" resolved for this
        head; `TfcafError` for bad values or options the resolved
        optimizer does not read."""
        config.validate()
        return config.for_head(objective.runs_adam(self.split, config))

    def solve(self, feature_maps, targets=None, config=SolverConfig()):
        """Solves the L2-CAF filter problem of each row of `feature_maps`.

        With `config.restarts` = k > 1, each problem is solved from k
        initial filters as k rows of one batch, and the start with the
        lowest final objective is kept.

        Args:
            feature_maps: (P, h, w, C) float32 (from `forward`, repeated per
                target when an image has several).
            targets: None (class-oblivious), (P,) int32 class ids
                (class-specific), or a `targets.Objective`.
            config: `SolverConfig`.

        Returns:
            `solver.Solution` (maps (P, h, w), iterations, losses, snapshots)
            of the kept starts.

        Raises:
            finite.NonFiniteError: when run eagerly, if a problem's loss or
                map is NaN or infinite.
        """
        config = self.resolve(config)
        # tf.function keys Python arguments by identity: equal configs must
        # be the same object, or every call would trace the solver again.
        config = self._configs.setdefault(config, config)
        goal = as_objective(targets)
        restarts = config.restarts
        if restarts > 1:
            feature_maps = tf.repeat(feature_maps, restarts, axis=0)
            goal = goal.repeated(restarts)
        params = self.initial_filters(feature_maps, config)
        solver = self._solvers[objective.compiles_with_xla(self.split, config)]
        solution = solver(feature_maps, goal, params, config)
        if restarts > 1:
            solution = _best_start(solution, restarts)
        if tf.executing_eagerly():
            finite.require_finite_solution(feature_maps, solution, self.layer)
        return solution

    def _solve_graph(self, feature_maps, targets, params, config):
        return objective.solve_l2caf(self.split, feature_maps, targets, params, config)

    def raw_maps(self, feature_maps, method_name, targets=None, images=None, **options):
        """Raw maps of a non-iterative method (CAM, Grad-CAM, Score-CAM, ...):
        (P, h, w) at feature-map size, or (P, H, W) for input-space methods.

        Args:
            feature_maps: (P, h, w, C) float32 from `forward`.
            method_name: a method of `METHODS` that is not iterative.
            targets: (P,) int32 class ids when `takes_targets(method_name)`,
                else None; or a `targets.Objective`.
            images: (P, H, W, C) float32 images `feature_maps` came from;
                needed by methods that run the whole model (Score-CAM).
            **options: the method's own options (`Method.options`).
        """
        method = lookup_method(method_name)
        values = method_options(method, options)
        goal = as_objective(targets) if targets is not None else None
        reason = self.supports(method_name, None if goal is None else goal.kind)
        if reason or method.iterative:
            raise TfcafError(f"method '{method_name}': "
                             f"{reason or 'iterative; call solve() for it'}")
        if images is not None:
            # Eagerly, before tracing: the traced graph sees shapes only in part.
            problem = array_problem(method, values, tuple(images.shape))
            if problem:
                raise TfcafError(problem)
        # Scalar options are constants of the traced graph; arrays (noise,
        # masks) are inputs of it, so new arrays do not retrace.
        arrays = {k: tf.convert_to_tensor(v, tf.float32) for k, v in values.items()
                  if v is not None and not isinstance(v, (numbers.Number, str))}
        scalars = {k: v for k, v in values.items() if k not in arrays}
        key = (method.name,) + tuple(sorted(scalars.items(), key=lambda kv: kv[0])) + \
            tuple(sorted(arrays))
        if key not in self._raw_map_functions:
            own_maps = self.model_maps(method)

            def raw_map_function(feature_maps, goal, images, arrays):
                if own_maps is not None:
                    return tf.cast(own_maps(images, goal.classes), tf.float32)
                options = dict(scalars, **arrays)
                channels, extras = self.split.channels, None
                if channels is not None and feature_maps is not None:
                    feature_maps, extras = feature_maps[..., :channels], \
                        feature_maps[..., channels:]
                return method.compute(MethodCall(self, feature_maps, goal, images, options,
                                                 extras))
            self._raw_map_functions[key] = tf.function(raw_map_function, reduce_retracing=True)
        return self._raw_map_functions[key](feature_maps, as_objective(goal), images, arrays)

    def head_beside(self, extras, gradient=False):
        """The head (`gradient`: the `gradient_head`) as a function of (R,
        h, w, C) patch channels, the (P, h, w, E) packed `extras` of P
        problems beside them (each repeated over its R / P rows; None: the
        head itself)."""
        head = self.gradient_head if gradient else self.split.head
        if extras is None:
            return head

        def with_extras(feature_maps, training=False):
            repeats = tf.shape(feature_maps)[0] // tf.shape(extras)[0]
            return head(tf.concat([feature_maps, tf.repeat(extras, repeats, axis=0)], axis=-1),
                        training=training)
        return with_extras

    @staticmethod
    def initial_filters(feature_maps, config):
        """Initial filter parameters for the (B, h, w, C) feature maps: row
        b starts from draw b mod `config.restarts`."""
        _, h, w, _ = feature_maps.shape
        return filters.initial_parameters(config.filter, tf.shape(feature_maps)[0], h, w,
                                          config.init, config.seed, config.restarts)

    def explain(self, images, method="l2caf", targets=None, **options):
        """Heatmaps for a batch of images; see `tfcaf.explain`."""
        spec = lookup_method(method)
        similarity = isinstance(targets, Similarity)
        reason = self.supports(method, SIMILARITY if similarity else None)
        if reason:
            raise TfcafError(f"method '{method}' does not apply to this model: {reason}")
        if targets is not None and not similarity and not self.takes_targets(method):
            raise TfcafError(f"method '{method}' on this model takes no targets")
        config = _solver_config(spec, options)
        if config is not None:
            config = self.resolve(config)
            options = {}
        images = self._checked_images(images)
        # An input-space method with its targets given needs no forward
        # pass here: it runs the whole model on the images itself.
        skip_forward = not spec.reads_feature_maps and (
            targets is not None or not self.takes_targets(method))
        feature_maps, outputs = (None, None) if skip_forward else self.forward(images)
        feature_maps, goal, target_matrix, squeeze = self._objective(
            method, targets, feature_maps, outputs, images.shape[0])
        # One row per problem (several targets per image).
        problems = images.shape[0] * (1 if target_matrix is None else target_matrix.shape[1])
        images = tf.repeat(images, problems // images.shape[0], axis=0)
        if spec.iterative:
            solution = spec.compute(MethodCall(self, feature_maps, goal, images, config))
            maps = solution.maps
        else:
            solution, maps = None, self.raw_maps(feature_maps, method, goal, images, **options)
            if skip_forward and not bool(tf.reduce_all(tf.math.is_finite(maps))):
                self.forward(images)  # raises, saying where the model broke
        explanation = self._package(maps, solution, target_matrix, squeeze, images.shape[1:3],
                                    method)
        explanation.solver = None if config is None else config.describe()
        return explanation

    def _objective(self, method, targets, feature_maps, outputs, batch):
        """(feature maps repeated per target (P, h, w, C) or None, the
        `targets.Objective` of the P problems, the (B, T) class-id matrix
        or None, whether the caller gave one target per image), for a
        batch of B = `batch` images whose (B, K) `outputs` are None when
        not needed (targets given)."""
        width = self.split.head.output.shape[-1]
        if isinstance(targets, Similarity):
            references = similarity_references(
                targets, batch, width,
                lambda x: self.forward(self._checked_images(x, "Similarity(images=...)"))[1])
            return feature_maps, Objective(SIMILARITY, references=tf.constant(references)), \
                None, True
        if not self.takes_targets(method):
            return feature_maps, as_objective(None), None, True
        target_matrix, squeeze = class_id_matrix(targets, outputs, batch, width)
        if feature_maps is not None:
            feature_maps = tf.repeat(feature_maps, target_matrix.shape[1], axis=0)
        goal = as_objective(tf.constant(target_matrix.reshape(-1), tf.int32))
        return feature_maps, goal, target_matrix, squeeze

    def _checked_images(self, images, name="images"):
        """`images` as a float32 tensor; `TfcafError` (naming the argument
        `name`) unless it is a non-empty, finite (B, H, W, C) batch of the
        model's input size."""
        images = tf.convert_to_tensor(images, tf.float32)
        expected = "(B, " + ", ".join(str(d or "any") for d in self.input_shape[1:]) + ")"
        fits = len(images.shape) == len(self.input_shape) and all(
            want is None or want == got
            for want, got in zip(self.input_shape[1:], images.shape[1:]))
        if not fits or images.shape[0] == 0:
            problem = "an empty batch" if fits else "a batch of the wrong shape"
            raise TfcafError(f"{name}: got {problem}, shape {tuple(images.shape)}; the model "
                             f"expects {expected} with B >= 1")
        finite = tf.reduce_all(tf.math.is_finite(images), axis=list(range(1, images.shape.rank)))
        if not bool(tf.reduce_all(finite)):
            bad = np.flatnonzero(~finite.numpy()).tolist()
            raise TfcafError(f"{name}: image(s) {bad} of the batch contain NaN or infinite "
                             "values")
        return images

    def _package(self, maps, solution, targets, squeeze, size, method):
        lead = (-1,) if squeeze else (-1, targets.shape[1])
        image_maps = heatmaps.to_image_size(maps, size)
        reshape = lambda x: np.reshape(x.numpy(), lead + tuple(x.shape[1:]))
        extras = {}
        if solution is not None:
            extras = dict(iterations=reshape(solution.iterations),
                          losses=reshape(solution.losses))
            if solution.snapshots is not None:
                extras["snapshots"] = reshape(solution.snapshots)
                extras["snapshot_losses"] = reshape(solution.snapshot_losses)
        return Explanation(
            heatmaps=reshape(image_maps), maps=reshape(maps),
            targets=None if targets is None else (targets[:, 0] if squeeze else targets),
            layer=self.layer, method=method, **extras)


def _best_start(solution, restarts):
    """The `Solution` of P problems from one of (P·k) rows, k = `restarts`
    starts per problem (rows p·k .. p·k + k − 1): each problem's kept start
    (`solver.best_starts`)."""
    rows = best_starts(solution.losses, restarts)
    return Solution(*(None if part is None else tf.gather(part, rows) for part in solution))


def _solver_config(method, options):
    """The `SolverConfig` of an iterative method's `options` (None for the
    others, whose options `raw_maps` checks); `TfcafError` for options it
    does not take."""
    if not method.iterative:
        method_options(method, options)
        return None
    unknown = sorted(set(options) - _SOLVER_OPTIONS)
    if unknown:
        raise TfcafError(f"method '{method.name}': unknown option(s) {', '.join(unknown)} "
                         f"(valid: {', '.join(sorted(_SOLVER_OPTIONS))})")
    return SolverConfig(**options)


_EXPLAINERS = weakref.WeakKeyDictionary()


def explain(model, images, method="l2caf", layer=None, targets=None, output=None,
            **options):
    """Where does `model` look in `images`?

    Args:
        model: Keras model (functional or Sequential, nesting allowed).
        images: (B, H, W, C) batch, as the model expects it (B >= 1, the
            model's input size, finite values).
        method: a name of `tfcaf.caf.METHODS` (the registry; README
            "Methods" lists them): "l2caf" (class-oblivious L2-CAF),
            "l2caf_specific", the CAM family, the input-space and
            perturbation methods.
        layer: layer to split at; default the last 4-D layer.
        targets: class ids for methods that take them on a logits model:
            an int, (B,), or (B, T) for several targets per image (solved
            independently); default each image's top-1 class. Or a
            `Similarity(embeddings=... | images=...)`: explain the cosine
            similarity of each image's output to a reference (every
            method whose `Method.targets` has it; "l2caf_specific" raises
            it).
        output: "logits" | "embedding"; default guessed (see `Explainer`).
        **options: `SolverConfig` fields for iterative methods (filter,
            optimizer, learning_rate, max_iterations, tolerance, init,
            seed, snapshot_every, ...); the method's own `Method.options`
            for the others (Score-CAM's batch_size, RISE's nb_samples, ...).

    Returns:
        An `Explanation`; `.heatmaps` is (B, H, W) in [0, 1].

    Raises:
        TfcafError: unknown method or option, a method that does not apply
            to the model, bad targets, or images that are not a non-empty
            finite batch of the model's input size; its subclass
            `NonFiniteError` when the model's outputs or L2-CAF's objective
            are NaN or infinite (a NaN weight, pixels of 1e28).
    """
    check_model(model)  # before the cache, which cannot key a non-model
    per_model = _EXPLAINERS.setdefault(model, {})
    key = (layer, output)
    if key not in per_model:
        per_model[key] = Explainer(model, layer=layer, output=output)
    return per_model[key].explain(images, method=method, targets=targets, **options)
