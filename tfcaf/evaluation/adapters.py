"""What evaluation needs from a model, for `.keras` models and SavedModels:
its outputs, a heatmap per method, and a scoring function for the
faithfulness metrics. Which methods exist and what each needs comes from
the engine's registry, `tfcaf.caf.METHODS`."""

import dataclasses
import logging
import os

import tensorflow as tf

from tfcaf import applications
from tfcaf.caf import METHODS, Explainer, SolverConfig, method
from tfcaf.caf.methods import method_options as options_of
from tfcaf.caf.targets import SIMILARITY, Similarity
from tfcaf.distribute.replicas import model_on
from tfcaf.errors import TfcafError
from tfcaf.export.settings import read_settings
from tfcaf.export.signatures import LEGACY_SIGNATURES
from tfcaf.metrics.faithfulness import model_substrate
from tfcaf.metrics.retrieval import neighbour_hits

log = logging.getLogger("tfcaf.evaluate")
SELF_SIMILARITY = "cosine similarity to the image's own embedding"


class KerasAdapter:
    """A Keras model, explained by `Explainer` (an ACoL model's CAM is its
    fused branch maps, `Method.model_maps`). On a
    retrieval net, a method that explains no embedding by itself, only a
    similarity to a reference (Score-CAM, Ablation-CAM, Occlusion, RISE,
    class-specific L2-CAF), explains each image's cosine similarity to its
    own embedding: how much of it the image's parts keep, which is what
    the faithfulness metrics score (docs/method.md §2).

    Args:
        model: tfcaf model (raw pixels in, logits or embedding out).
        solver: `SolverConfig` of the iterative methods (L2-CAF).
        layer: split layer (default: the last 4-D layer).
        output: "logits" | "embedding" (default: guessed, see `Explainer`).
        source: what the model was loaded from, for the record (default:
            the model's name).
        method_options: {method name: {option: value}} of the methods
            without a solver (`Method.options`; the others keep defaults).

    Raises:
        TfcafError: bad `solver` settings, or options its resolved
            optimizer does not read (before any image is run).
    """

    def __init__(self, model, solver=SolverConfig(), layer=None, output=None, source=None,
                 method_options=None):
        self.model, self.source = model, source or model.name
        self.method_options = {name: options_of(method(name), given)
                               for name, given in (method_options or {}).items()}
        self.explainer = Explainer(model, layer=layer, output=output)
        self.solver = solver
        self.resolved = self.explainer.resolve(solver)
        self.embedding = self.explainer.output == "embedding"
        self._predict = tf.function(lambda x: model(x, training=False))
        # Logits even for a model ending in softmax: the faithfulness
        # scores apply their own softmax.
        self._logits = tf.function(lambda x: self.explainer.forward(x)[1],
                                   reduce_retracing=True)

    def replicate(self, device):
        """This adapter with a copy of the model on `device`: a replica of
        a distributed pass (`tfcaf.distribute.replicas`)."""
        return KerasAdapter(model_on(self.model, device), self.solver, self.explainer.layer,
                            self.explainer.output, self.source, self.method_options)

    def input_size(self, size=None):
        """(H, W) the images are resized to: `size` (an int or (H, W)) or
        the model's own (224 where it is open); `TfcafError` when `size`
        is not the model's fixed size."""
        return applications.input_size(self.model, size)

    @property
    def num_classes(self):
        """K of the (B, K) logits; None for an embedding."""
        return None if self.embedding else int(self.model.output_shape[-1])

    def supports(self, method_name):
        """None when `method_name` applies to this model, else the reason."""
        if self._self_similarity(method_name):
            return None
        return self.explainer.supports(method_name)

    def _self_similarity(self, method_name):
        return self.embedding and self.explainer.supports(method_name) is not None and \
            self.explainer.supports(method_name, SIMILARITY) is None

    def settings(self):
        """What every method's numbers depend on, for metrics.json."""
        return {"source": self.source, "format": "keras", "output": self.explainer.output}

    def method_settings(self, method_name):
        """The layer, filter and resolved solver (`SolverConfig.describe()`)
        that `method_name`'s maps depend on."""
        spec = method(method_name)
        if self.explainer.model_maps(spec) is not None:
            return {"map": f"the model's own {spec.model_maps} (docs/method.md §3)"}
        target = {"target": SELF_SIMILARITY} if self._self_similarity(method_name) else {}
        if not spec.iterative:
            options = self._options(method_name)
            return {"layer": self.explainer.layer, **target,
                    **({"options": options} if options else {})}
        return {"layer": self.explainer.layer, **target, "filter": self.resolved.filter,
                "solver": self.resolved.describe()}

    def outputs(self, images):
        """(B, K) logits or (B, D) embeddings."""
        return self._predict(images).numpy()

    def scores_input(self):
        """(predict, substrate) for `tfcaf.metrics.faithfulness`: raw pixels
        (B, H, W, 3) -> logits (B, K) or embeddings (B, D), and the colour
        the model's preprocessing maps to zero."""
        return self._logits, model_substrate(self.model)

    def maps(self, images, labels, method_name):
        """(raw (B, h, w), heatmaps (B, H, W) in [0, 1]); class-based methods
        explain `labels` (the ground-truth class, which equals the top-1
        class wherever top-1 localization can count)."""
        targets = labels if self.explainer.takes_targets(method_name) else None
        if self._self_similarity(method_name):
            targets = Similarity(embeddings=self.outputs(images))
        options = dataclasses.asdict(self.solver) if method(method_name).iterative else \
            self._options(method_name)
        result = self.explainer.explain(images, method_name, targets, **options)
        return result.maps, result.heatmaps

    def _options(self, method_name):
        """The options `method_name` runs with, defaults filled in (arrays,
        which have no command-line form, left at None: drawn from `seed`)."""
        return self.method_options.get(method_name) or options_of(method(method_name), {})

    def heatmaps(self, images, labels, method_name):
        """(B, H, W) heatmaps in [0, 1] (see `maps`)."""
        return self.maps(images, labels, method_name)[1]


class SavedModelAdapter:
    """An export of `tfcaf.export`: outputs from `serving_default`, maps
    from its explain signatures (their solver settings and method options
    were fixed at export, and recorded in `assets.extra/tfcaf_solver.json`
    with the method and target of each signature). Each method's default
    target is evaluated: class ids on a classifier, the embedding on a
    retrieval net."""

    def __init__(self, path):
        self.path = path
        self.loaded = tf.saved_model.load(path)
        self.export_settings = read_settings(path)
        if self.export_settings is None:
            log.warning("warning: %s records no solver settings (exported before tfcaf "
                        "wrote assets.extra/tfcaf_solver.json); metrics.json cannot say "
                        "which solver made its maps", path)
        self.signatures = self.loaded.signatures
        self.embedding = "embedding" in self.signatures["serving_default"].structured_outputs
        # Each method's default target; where a retrieval net has only a
        # similarity signature of a method, the similarity to the image's
        # own embedding (as `KerasAdapter`).
        recorded = [(method_name, kind, signature) for signature, (method_name, kind)
                    in self._recorded_signatures().items() if signature in self.signatures]
        self.method_signatures = {}
        for method_name, kind, signature in sorted(recorded, key=lambda r: r[1] is None):
            self.method_signatures[method_name] = signature

    def _recorded_signatures(self):
        """{signature: (method, target kind or None: the default)} as the
        export recorded them (tfcaf 0.2 exports: their known layout)."""
        recorded = (self.export_settings or {}).get("signatures")
        if recorded is None:
            return LEGACY_SIGNATURES["embedding" if self.embedding else "logits"]
        # Early 0.3 exports recorded {signature: method}.
        return {signature: (entry, None) if isinstance(entry, str) else
                (entry["method"], entry["target"]) for signature, entry in recorded.items()}

    def replicate(self, device):
        """The export loaded again with its variables on `device` (a
        replica of a distributed pass, `tfcaf.distribute.replicas`)."""
        with tf.device(device):
            return SavedModelAdapter(self.path)

    def input_size(self, size=None):
        """(H, W) of the export's `images` input; `TfcafError` when `size`
        (an int or (H, W)) differs from it."""
        spec = self.signatures["serving_default"].structured_input_signature[1]["images"]
        return applications.fit_size(tuple(spec.shape[1:3]), size, None,
                                     f"SavedModel '{self.path}'")

    @property
    def num_classes(self):
        """K of the (B, K) probabilities; None for an embedding."""
        if self.embedding:
            return None
        return int(self.signatures["serving_default"].structured_outputs["probabilities"]
                   .shape[-1])

    def supports(self, method_name):
        if method_name in self.method_signatures:
            return None
        if method_name not in METHODS:
            return f"unknown method '{method_name}'; choose one of {', '.join(METHODS)}"
        return (f"not in this SavedModel, whose explain signatures give "
                f"{', '.join(self.method_signatures)}")

    def settings(self):
        """What every method's numbers depend on, for metrics.json: the
        export's recorded settings and the versions it was written with."""
        recorded = self.export_settings or {}
        return {"source": self.path, "format": "savedmodel",
                "output": "embedding" if self.embedding else "logits",
                "export_versions": recorded.get("versions")}

    def method_settings(self, method_name):
        """The layer, and the filter and solver (iterative methods) or the
        options (the others) fixed at export (None where the export
        predates their record)."""
        recorded = self.export_settings or {}
        signature = self.signatures[self.method_signatures[method_name]]
        target = {"target": SELF_SIMILARITY} \
            if "references" in signature.structured_input_signature[1] else {}
        if not method(method_name).iterative:
            options = (recorded.get("method_options") or {}).get(method_name)
            return {"layer": recorded.get("layer"), **target, "fixed_at_export": True,
                    **({"options": options} if options else {})}
        solver = recorded.get("solver")
        return {"layer": recorded.get("layer"), **target,
                "filter": solver and solver.get("filter"), "solver": solver,
                "fixed_at_export": True}

    def outputs(self, images):
        result = self.signatures["serving_default"](images=tf.constant(images))
        return (result["embedding"] if self.embedding else result["probabilities"]).numpy()

    def scores_input(self):
        raise TfcafError("faithfulness metrics need a .keras model (the substrate colour comes "
                         "from its ImagePreprocessing layer), not a SavedModel")

    def maps(self, images, labels, method_name):
        """(raw (B, h, w), heatmaps (B, H, W) in [0, 1])."""
        name = self.method_signatures[method_name]
        inputs = {"images": tf.constant(images)}
        takes = self.signatures[name].structured_input_signature[1]
        if "targets" in takes:
            inputs["targets"] = tf.constant(labels, tf.int32)
        if "references" in takes:
            inputs["references"] = tf.constant(self.outputs(images))
        result = self.signatures[name](**inputs)
        return result["maps"].numpy(), result["heatmaps"].numpy()

    def heatmaps(self, images, labels, method_name):
        return self.maps(images, labels, method_name)[1]


def load_adapter(path, solver=SolverConfig(), layer=None, output=None, preprocessing=None,
                 method_options=None):
    """A `KerasAdapter` for a `.keras` file (solved with the `SolverConfig`
    `solver`, preprocessed as `applications.load_model` does with
    `preprocessing`, with `method_options`), a `SavedModelAdapter` for an
    export folder (whose solver and preprocessing were fixed at export);
    errors name the path."""
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise TfcafError(f"'{path}' is neither a .keras file nor a SavedModel folder")
        if preprocessing is not None:
            raise TfcafError(f"preprocessing={preprocessing!r}: '{path}' is a SavedModel, "
                             "whose preprocessing was fixed at export")
        return SavedModelAdapter(path)
    model = applications.load_model(path, preprocessing=preprocessing)
    return KerasAdapter(model, solver=solver, layer=layer, output=output, source=path,
                        method_options=method_options)


def check_classes(adapter, dataset):
    """`TfcafError` when `dataset` has more classes than the classifier
    behind `adapter` has outputs (its labels would name no output).

    Args:
        adapter: a `KerasAdapter` or `SavedModelAdapter`.
        dataset: a `tfcaf.data.ImageDataset`.
    """
    outputs = adapter.num_classes
    if outputs is None or dataset.num_classes <= outputs:
        return
    names = dataset.class_names
    shown = ", ".join(names[:3]) + (f", ..., {names[-1]}" if len(names) > 3 else "")
    where = f" ({dataset.source})" if dataset.source else ""
    raise TfcafError(f"dataset {dataset.name}/{dataset.split}{where} has "
                     f"{dataset.num_classes} classes ({shown}), but model "
                     f"'{adapter.settings()['source']}' has {outputs} class outputs: its labels "
                     "must be the model's class ids")


def top1_correct(outputs, labels, embedding):
    """(N,) bool: top-1 class right (classifiers), or nearest other item of
    the same class (retrieval nets: the R@1 condition, docs/method.md §5)."""
    if not embedding:
        return outputs.argmax(-1) == labels
    return neighbour_hits(outputs, labels, 1)[:, 0]
