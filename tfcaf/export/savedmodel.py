"""SavedModels for TF Serving with in-graph explain signatures of every method.

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

from tfcaf.caf import METHODS, Explainer, SolverConfig
from tfcaf.caf.methods import method_options as method_options_of
from tfcaf.errors import TfcafError
from tfcaf.export.settings import EXPORT_ITERATIONS, SETTINGS_FILE
from tfcaf.export.signatures import endpoints, explain_signatures
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


def _settings(explainer, config, signatures, method_options):
    """What the explain signatures' maps depend on (`SETTINGS_FILE`)."""
    return {"solver": config.describe(), "layer": explainer.layer,
            "output": explainer.output,
            "signatures": {name: {"method": method, "target": kind}
                           for name, (method, kind) in signatures.items()},
            "method_options": method_options, "versions": versions()}


def export_savedmodel(model, export_base, name, *, version=None, solver=None, iterations=None,
                      top_k=5, layer=None, output=None, image_size=None, methods=None,
                      method_options=None):
    """Writes `export_base/name/version/` and returns its path.

    Signatures (inputs -> outputs):
        serving_default: images (B, H, W, 3) float32 RGB [0, 255] ->
            classifiers: probabilities (B, K), classes (B, k), scores (B, k);
            retrieval nets: embedding (B, D).
        predict_image_bytes: image_bytes (B,) encoded JPEG/PNG -> the same,
            decoded and resized to (H, W) in the graph.
        explain_<method>: images [, targets (B,) int32, -1 = top-1 class]
            -> maps (B, h, w) (input-space methods: (B, H, W)), heatmaps
            (B, H, W) in [0, 1], status (B,) string [, targets], for every
            method that applies (`signatures.explain_signatures`): class
            ids on a classifier where the method takes them, else the
            output as a whole. Iterative methods solve with `solver` as
            `tfcaf.explain(..., **solver fields)` solves: at most
            `max_iterations` iterations, each image stopping earlier by
            the same rule.
        explain_<method>_similarity (retrieval nets): images, references
            (B, D) -> the same, explaining the cosine similarity of each
            image's embedding to its reference.
        explain, explain_oblivious: tfcaf 0.2's names of
            explain_l2caf_specific and explain_l2caf (classifiers), and of
            explain_l2caf (retrieval nets).

    The resolved solver settings, split layer, output kind, the method and
    target of each explain signature, the methods' options and the versions
    are written to `assets.extra/tfcaf_solver.json` (`read_settings`).

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
        methods: names of the methods to export (default: every method
            that applies to the model).
        method_options: {method: {option: value}} of the non-iterative
            methods (default: each method's own defaults).

    Raises:
        TfcafError: an open input size without `image_size`, bad solver
            settings or options the resolved optimizer does not read, a
            method of `methods` that does not apply, or an unknown method
            option.
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
    signatures = explain_signatures(explainer, methods)
    exported = sorted({method for method, _ in signatures.values()})
    options = {name: method_options_of(METHODS[name], (method_options or {}).get(name, {}))
               for name in exported if not METHODS[name].iterative}
    unused = sorted(set(method_options or {}) - set(options))
    if unused:
        raise TfcafError(f"method_options given for {', '.join(unused)}, which this export "
                         f"has no non-iterative signature of")
    archive = keras.export.ExportArchive()
    archive.track(model)
    for endpoint, (fn, signature) in endpoints(explainer, size, top_k, config, signatures,
                                               options).items():
        archive.add_endpoint(endpoint, _named_variable_captures(model, fn),
                             input_signature=signature)
    _write_version(archive, final, _settings(explainer, config, signatures,
                                             _recordable(options)))
    return final


def _recordable(options):
    """`options` for the JSON record: array options, drawn from the seed
    in the graph, as None."""
    return {name: {key: value if value is None or isinstance(value, (int, float, str))
                   else "array" for key, value in values.items()}
            for name, values in options.items()}


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
