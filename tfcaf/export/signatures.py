"""The endpoints of an export: predictions, and one explain signature per
method and target kind that applies to the model.

Every method of the registry compiles into one graph with the model (the
iterative ones as a `tf.while_loop`, the many-pass ones as batched passes),
so every method that applies gets a signature:

    explain_<method>             the method's default target: class ids on a
                                 classifier (`targets`, -1 = top-1), the
                                 output as a whole where it takes no class
                                 (class-oblivious L2-CAF, EigenCAM, or any
                                 method on a retrieval net);
    explain_<method>_similarity  retrieval nets: the cosine similarity of
                                 the embedding to `references` (B, D).

`explain` and `explain_oblivious` keep the names of tfcaf 0.2's exports
(L2-CAF), for clients written against them.
"""

import tensorflow as tf

from tfcaf.caf import METHODS, finite
from tfcaf.caf.heatmaps import to_image_size
from tfcaf.caf.targets import CLASSES, SIMILARITY, Objective, as_objective
from tfcaf.data.graph_decode import decoded_pixels
from tfcaf.errors import TfcafError

# tfcaf 0.2's signature names -> (method, target kind), per output kind.
LEGACY_SIGNATURES = {
    "logits": {"explain": ("l2caf_specific", CLASSES), "explain_oblivious": ("l2caf", None)},
    "embedding": {"explain": ("l2caf", None)},
}


def explain_signatures(explainer, methods=None):
    """{signature name: (method name, target kind or None for the
    method's default)} of every method of `methods` (names; default all
    of `METHODS`) that applies to `explainer`'s model, legacy names first.

    Raises:
        TfcafError: a name of `methods` is no method, or does not apply.
    """
    names = list(METHODS) if methods is None else list(methods)
    chosen = {}
    for name in names:
        kinds = (None, SIMILARITY) if explainer.output == "embedding" else (None,)
        reasons = {kind: explainer.supports(name, kind) for kind in kinds}
        for kind, reason in reasons.items():
            if reason is None:
                chosen[f"explain_{name}" + ("_similarity" if kind else "")] = (name, kind)
        if methods is not None and None not in reasons.values():
            raise TfcafError(f"method '{name}' cannot be exported for this model: "
                             f"{reasons[None]}")
    legacy = {signature: entry for signature, entry in
              LEGACY_SIGNATURES[explainer.output].items()
              if f"explain_{entry[0]}" in chosen}
    return {**legacy, **chosen}


def endpoints(explainer, size, top_k, config, signatures, method_options=None):
    """name -> (tf function, input signature) of every endpoint.

    Args:
        explainer: the model's `Explainer`.
        size: (H, W) of the images input.
        top_k: classes returned by the predictions.
        config: resolved `SolverConfig` of the iterative methods.
        signatures: the explain signatures, `explain_signatures(...)`.
        method_options: {method: {option: value}} of the others (default:
            each method's defaults; array options are drawn from `seed`).
    """
    height, width = size
    images = tf.TensorSpec([None, height, width, 3], tf.float32, name="images")
    embedding = explainer.output == "embedding"

    def predict(images):
        # The split head returns logits even for a model ending in softmax.
        outputs = explainer.forward(images)[1]
        if embedding:
            return {"embedding": outputs}
        probabilities = tf.nn.softmax(outputs, axis=-1)
        scores, classes = tf.math.top_k(probabilities, k=min(top_k, outputs.shape[-1]))
        return {"probabilities": probabilities, "classes": classes, "scores": scores}

    def predict_image_bytes(image_bytes):
        def one(data):
            return tf.image.resize(decoded_pixels(data), (height, width))
        return predict(tf.map_fn(one, image_bytes, fn_output_signature=tf.float32))

    result = {
        "serving_default": (predict, [images]),
        "predict_image_bytes": (predict_image_bytes,
                                [tf.TensorSpec([None], tf.string, name="image_bytes")]),
    }
    dimension = explainer.split.head.output.shape[-1]
    for signature, (name, kind) in signatures.items():
        method = METHODS[name]
        kind = kind or method.default_target(explainer.output)
        inputs = [images]
        if kind == CLASSES:
            inputs.append(tf.TensorSpec([None], tf.int32, name="targets"))
        elif kind == SIMILARITY:
            inputs.append(tf.TensorSpec([None, dimension], tf.float32, name="references"))
        options = config if method.iterative else (method_options or {}).get(name, {})
        result[signature] = (_explain_function(explainer, method, kind, size, options), inputs)
    return result


def _explain_function(explainer, method, kind, size, options):
    """The graph function (images[, targets | references]) -> maps (P, h, w)
    (input-space methods: (P, H, W)), heatmaps (P, H, W) in [0, 1], status
    (P,) string [, targets] of `method` explaining a `kind` target."""
    def explain(images, given=None):
        feature_maps, outputs = explainer.forward(images)
        result = {}
        if kind == CLASSES:
            targets = _checked_targets(given, images, outputs.shape[-1])
            predicted = tf.argmax(outputs, axis=-1, output_type=tf.int32)
            targets = tf.where(targets == -1, predicted, targets)
            goal = as_objective(targets)
            result["targets"] = targets
        elif kind == SIMILARITY:
            goal = Objective(SIMILARITY, references=_checked_references(given, images))
        else:
            goal = as_objective(None)
        if method.iterative:
            solution = explainer.solve(feature_maps, goal, options)
            maps, losses = solution.maps, solution.losses
        else:
            maps = explainer.raw_maps(feature_maps, method.name, goal, images, **options)
            losses = tf.zeros(tf.shape(maps)[:1])
        # A problem whose values went non-finite is returned as NaN, never
        # as a plausible map.
        status = finite.problem_status(images, feature_maps, outputs, losses, maps)
        ok = tf.equal(status, finite.OK)[:, None, None]
        result["maps"] = tf.where(ok, maps, float("nan"))
        result["heatmaps"] = tf.where(ok, to_image_size(maps, size), float("nan"))
        result["status"] = status
        return result
    explain.__name__ = f"explain_{method.name}"
    return explain


def _checked_targets(targets, images, num_classes):
    """`targets` (B,) int32 after asserting, in the graph, one per image and
    each a class id in [0, num_classes) or -1 (top-1): an out-of-range id
    fails the call with an InvalidArgument error that names it."""
    valid = (targets >= -1) & (targets < num_classes)
    checks = [
        tf.debugging.assert_equal(
            tf.size(targets), tf.shape(images)[0],
            message="explain: give one target per image (targets and images differ in "
                    "length)"),
        tf.debugging.Assert(tf.reduce_all(valid), [
            f"explain: targets must be class ids in [0, {num_classes}) or -1 (the top-1 "
            "class); got", tf.boolean_mask(targets, ~valid)]),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(targets)


def _checked_references(references, images):
    """(B, D) unit-norm `references` after asserting, in the graph, one per
    image, each finite and non-zero."""
    norms = tf.norm(references, axis=-1)
    checks = [
        tf.debugging.assert_equal(
            tf.shape(references)[0], tf.shape(images)[0],
            message="explain: give one reference embedding per image (references and "
                    "images differ in length)"),
        tf.debugging.Assert(tf.reduce_all(tf.math.is_finite(norms) & (norms > 0)), [
            "explain: a reference embedding is zero or not finite; norms:", norms]),
    ]
    with tf.control_dependencies(checks):
        return references / norms[:, None]
