"""SavedModels for TF Serving with an in-graph L2-CAF `explain` signature.

Layout: `BASE/NAME/VERSION/` with numeric versions, as TF Serving expects.
A version is written to a hidden temporary folder beside it and renamed
into place, so a server never sees a half-written export. Nothing in the
export needs tfcaf: plain TensorFlow loads and runs it.
"""

import dataclasses
import json
import os
import re
import shutil

import keras
import tensorflow as tf

from tfcaf.caf import Explainer, SolverConfig
from tfcaf.caf.heatmaps import to_image_size
from tfcaf.errors import TfcafError
from tfcaf.export.settings import EXPORT_ITERATIONS, SETTINGS_FILE
from tfcaf.versions import versions


def next_version(model_dir):
    """1 + the largest numeric version folder under `model_dir` (1 if none)."""
    if not os.path.isdir(model_dir):
        return 1
    versions = [int(d) for d in os.listdir(model_dir) if re.fullmatch(r"\d+", d)]
    return max(versions, default=0) + 1


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
            image = tf.io.decode_image(data, channels=3, expand_animations=False)
            return tf.image.resize(tf.cast(image, tf.float32), (height, width))
        return tf.map_fn(one, image_bytes, fn_output_signature=tf.float32)

    def l2caf(images, targets=None):
        feature_maps, logits = explainer.forward(images)
        if targets is not None:
            predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
            targets = tf.where(targets < 0, predicted, targets)
        maps = explainer.solve(feature_maps, targets, config).maps
        result = {"maps": maps, "heatmaps": to_image_size(maps, (height, width))}
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
    """
    model_dir = os.path.join(export_base, name)
    version = next_version(model_dir) if version is None else int(version)
    final = os.path.join(model_dir, str(version))
    if os.path.exists(final):
        raise FileExistsError(f"export version '{final}' already exists")
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
    os.makedirs(model_dir, exist_ok=True)
    temporary = os.path.join(model_dir, f".tmp-{version}-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        archive.write_out(temporary, verbose=False)
        settings_file = os.path.join(temporary, *SETTINGS_FILE)
        os.makedirs(os.path.dirname(settings_file), exist_ok=True)
        with open(settings_file, "w") as f:
            json.dump(_settings(explainer, config), f, indent=2, sort_keys=True)
        os.rename(temporary, final)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return final
