"""SavedModels for TF Serving with an in-graph L2-CAF `explain` signature.

Layout: `BASE/NAME/VERSION/` with numeric versions, as TF Serving expects.
A version is written to a hidden temporary folder beside it and renamed
into place, so a server never sees a half-written export, and a failed or
killed export leaves no version behind. An export adds a version and never
replaces one (the output rule of `tfcaf.outputs`, with the version folder
as the run's set). Nothing in the export needs tfcaf: plain TensorFlow
loads and runs it.
"""

import dataclasses
import json
import os
import re
import shutil

import keras
import tensorflow as tf

from tfcaf.caf import Explainer, SolverConfig, finite
from tfcaf.caf.heatmaps import to_image_size
from tfcaf.data.graph_decode import decoded_pixels
from tfcaf.errors import TfcafError
from tfcaf.export.settings import EXPORT_ITERATIONS, SETTINGS_FILE
from tfcaf.outputs import OutputError, check_folder, make_folder
from tfcaf.versions import versions


def next_version(model_dir):
    """1 + the largest numeric version folder under `model_dir` (1 if none)."""
    if not os.path.isdir(model_dir):
        return 1
    versions = [int(d) for d in os.listdir(model_dir) if re.fullmatch(r"\d+", d)]
    return max(versions, default=0) + 1


def destination(export_base, name, version=None):
    """`export_base/name/version`, the folder an export will create
    (`version` None: the next free one), checked before any work.

    Raises:
        OutputError: `name` is not one plain folder name (it would leave
            `export_base`), a path on the way is a file, or the version
            exists (versions are never replaced).
    """
    if (not name or os.path.basename(name) != name or name.startswith(".")
            or "/" in name or "\\" in name or "\0" in name):
        raise OutputError(f"export name '{name}' is not one plain folder name (no '/', no "
                          f"leading '.'): the export must stay inside '{export_base}'")
    model_dir = os.path.join(export_base, name)
    check_folder(model_dir, "export folder")
    final = os.path.join(model_dir, str(next_version(model_dir) if version is None else
                                        int(version)))
    if os.path.lexists(final):
        raise OutputError(f"export version '{final}' already exists and is never replaced; "
                          f"the next free version is {next_version(model_dir)}")
    return final


def _named_variable_captures(model, endpoint):
    """`endpoint`, first capturing every model variable under a name that is
    valid for a SignatureDef input.

    A `tf.function` captures a variable it reads under an automatic name: a
    number when the read happens in a nested `tf.function` (as the
    Explainer's are), "resource" otherwise. Neither is a valid signature
    input name, so TensorFlow renames them at export and logs one long
    "input name(s) ... with unsupported characters which will be renamed"
    line per signature. A graph captures a tensor once, so capturing each
    handle first with a valid name fixes the name of every later use.
    """
    names_and_handles = []
    for index, variable in enumerate(model.variables):
        stem = re.sub(r"[^a-z0-9_]+", "_", variable.path.lower())
        names_and_handles.append((f"variable_{index}_{stem}",
                                  getattr(variable, "value", variable).handle))

    def with_named_captures(*args):
        graph = tf.compat.v1.get_default_graph()
        for name, handle in names_and_handles:
            graph.capture(handle, name=name)
        return endpoint(*args)
    with_named_captures.__name__ = endpoint.__name__
    return with_named_captures


def _signatures(explainer, size, top_k, config):
    """name -> (tf function, input signature) of every endpoint; the
    explain signatures solve with the resolved `SolverConfig` `config`."""
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

    def decode(image_bytes):
        def one(data):
            return tf.image.resize(decoded_pixels(data), (height, width))
        return tf.map_fn(one, image_bytes, fn_output_signature=tf.float32)

    def l2caf(images, targets=None):
        feature_maps, logits = explainer.forward(images)
        if targets is not None:
            targets = _checked_targets(targets, images, logits.shape[-1])
            predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
            targets = tf.where(targets == -1, predicted, targets)
        solution = explainer.solve(feature_maps, targets, config)
        # A problem whose values went non-finite ends at its initial random
        # filter: it is returned as NaN, never as a plausible map.
        status = finite.problem_status(images, feature_maps, logits, solution.losses,
                                       solution.maps)
        ok = tf.equal(status, finite.OK)
        maps = tf.where(ok[:, None, None], solution.maps, float("nan"))
        heatmaps = tf.where(ok[:, None, None], to_image_size(solution.maps, (height, width)),
                            float("nan"))
        result = {"maps": maps, "heatmaps": heatmaps, "status": status}
        if targets is not None:
            result["targets"] = targets
        return result

    def predict_image_bytes(image_bytes):
        return predict(decode(image_bytes))

    endpoints = {
        "serving_default": (predict, [images]),
        "predict_image_bytes": (predict_image_bytes,
                                [tf.TensorSpec([None], tf.string, name="image_bytes")]),
        "explain": (l2caf, [images]),
    }
    if not embedding:
        endpoints["explain"] = (l2caf, [images, tf.TensorSpec([None], tf.int32,
                                                               name="targets")])
        endpoints["explain_oblivious"] = (l2caf, [images])
    return endpoints


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


def _settings(explainer, config):
    """What the explain signatures' maps depend on (`SETTINGS_FILE`)."""
    embedding = explainer.output == "embedding"
    return {"solver": config.describe(), "layer": explainer.layer,
            "output": explainer.output,
            "signatures": {"explain": "l2caf" if embedding else "l2caf_specific",
                           **({} if embedding else {"explain_oblivious": "l2caf"})},
            "versions": versions()}


def export_savedmodel(model, export_base, name, *, version=None, solver=None, iterations=None,
                      top_k=5, layer=None, output=None, image_size=None):
    """Writes `export_base/name/version/` and returns its path.

    Signatures (inputs -> outputs):
        serving_default: images (B, H, W, 3) float32 RGB [0, 255] ->
            classifiers: probabilities (B, K), classes (B, k), scores (B, k);
            retrieval nets: embedding (B, D).
        predict_image_bytes: image_bytes (B,) encoded JPEG/PNG -> the same,
            decoded and resized to (H, W) in the graph.
        explain: images [, targets (B,) int32, -1 = top-1 class] ->
            maps (B, h, w), heatmaps (B, H, W) in [0, 1] [, targets];
            class-specific L2-CAF for classifiers, class-oblivious for
            retrieval nets; solved with `solver` as `tfcaf.explain(...,
            **solver fields)` solves: at most `max_iterations` iterations,
            each image stopping earlier by the same rule.
        explain_oblivious (classifiers): images -> maps, heatmaps.

    The resolved solver settings, split layer, output kind and versions are
    written to `assets.extra/tfcaf_solver.json` (`read_settings`).

    Args:
        model: Keras model taking raw RGB pixels (tfcaf models do).
        export_base, name: TF Serving's model base path is
            `export_base/name`.
        version: integer version; default the next free one.
        solver: `SolverConfig` of the explain signatures (default: the
            default one, capped at `EXPORT_ITERATIONS` = 300 iterations).
        iterations: if given, replaces `solver.max_iterations` (the cap,
            and for Adam/SGD the learning-rate schedule's horizon).
        top_k: classes returned by `serving_default`.
        layer: layer L2-CAF splits at (default: the last 4-D layer).
        output: "logits" | "embedding" (default: guessed, see `Explainer`).
        image_size: (H, W) for models whose input size is open.

    Raises:
        TfcafError: an open input size without `image_size`, bad solver
            settings or options the resolved optimizer does not read.
        OutputError: a bad `name`, an existing version, or a write the
            operating system refused (a full disk); no version is left.
    """
    final = destination(export_base, name, version)
    _, height, width, _ = model.input_shape
    size = (height or (image_size or (None,))[0], width or (image_size or (None, None))[1])
    if None in size:
        raise TfcafError(f"model '{model.name}' has an open input size; pass image_size=(H, W)")
    solver = SolverConfig(max_iterations=EXPORT_ITERATIONS) if solver is None else solver
    if iterations is not None:
        solver = dataclasses.replace(solver, max_iterations=iterations)
    explainer = Explainer(model, layer=layer, output=output)
    config = explainer.resolve(solver)
    archive = keras.export.ExportArchive()
    archive.track(model)
    for endpoint, (fn, signature) in _signatures(explainer, size, top_k, config).items():
        archive.add_endpoint(endpoint, _named_variable_captures(model, fn),
                             input_signature=signature)
    _write_version(archive, final, _settings(explainer, config))
    return final


def _write_version(archive, final, settings):
    """Writes the export to a temporary folder beside `final`, then renames
    it to `final`; nothing stays behind when that fails."""
    model_dir, version = os.path.split(final)
    make_folder(model_dir, "export folder")
    temporary = os.path.join(model_dir, f".tmp-{version}-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        archive.write_out(temporary, verbose=False)
        settings_file = os.path.join(temporary, *SETTINGS_FILE)
        os.makedirs(os.path.dirname(settings_file), exist_ok=True)
        with open(settings_file, "w") as f:
            json.dump(settings, f, indent=2, sort_keys=True)
        os.rename(temporary, final)
    except (OSError, tf.errors.ResourceExhaustedError, tf.errors.PermissionDeniedError) as error:
        # TensorFlow reports a full disk as ResourceExhaustedError.
        reason = error.strerror if isinstance(error, OSError) and error.strerror else \
            (getattr(error, "message", None) or str(error)).strip().splitlines()[-1]
        if os.path.lexists(final):  # another export took this version meanwhile
            reason = "it was created by another export meanwhile"
        raise OutputError(f"cannot write export '{final}': {reason}; nothing was left "
                          "under it") from error
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
