"""`evaluate`: metrics, report and pictures for one model on one dataset."""

import dataclasses
import logging
import os

import tensorflow as tf

from tfcaf.data.checks import DataError, require_boxes
from tfcaf.distribute.strategy import is_chief
from tfcaf.errors import TfcafError
from tfcaf.evaluation import report, resume, runner, sanity
from tfcaf.evaluation.adapters import KerasAdapter
from tfcaf.evaluation.config import EvalConfig
from tfcaf.metrics import faithfulness as fm
from tfcaf.metrics import localization as loc
from tfcaf.metrics import registry
from tfcaf.metrics.degenerate import degenerate_warning
from tfcaf.outputs import OutputSet
from tfcaf.versions import versions

log = logging.getLogger("tfcaf.evaluate")
_BOX_REFERENCE = {"wsolevaluation": "equal to clovaai/wsolevaluation@96f4b88",
                  "tfcaf": "tfcaf's connected-component boxes (docs/method.md §5)"}


def _usable_methods(adapter, methods):
    usable = []
    for method in methods:
        reason = adapter.supports(method)
        if reason is None:
            usable.append(method)
        else:
            log.warning("skipping %s: %s", method, reason)
    return usable


def _needing(metrics, need):
    return [m.name for m in metrics if need in m.needs]


def _check(metrics, adapter, dataset):
    """User errors that can be told before any image is run: what each
    metric `needs` (`tfcaf.metrics.registry.NEEDS`)."""
    boxed = _needing(metrics, "boxes")
    if boxed:
        require_boxes(dataset, "--metric=" + ",".join(boxed))
    masked = _needing(metrics, "masks")
    if masked and getattr(dataset, "masks", None) is None:
        where = f" ({dataset.mask_file} does not exist)" if getattr(
            dataset, "mask_file", "") else ""
        raise DataError(f"--metric={','.join(masked)} needs ground-truth masks: "
                        f"{dataset.name}/{dataset.split} has none{where}")
    if _needing(metrics, "embedding") and not adapter.embedding:
        raise TfcafError(f"--metric={'/'.join(_needing(metrics, 'embedding'))} needs a "
                         "retrieval net (embedding output)")
    if _needing(metrics, "keras_model") and not isinstance(adapter, KerasAdapter):
        raise TfcafError(f"--metric={','.join(_needing(metrics, 'keras_model'))} randomises "
                         "weights: give a .keras model")
    if _needing(metrics, "scores"):
        adapter.scores_input()  # raises when the model cannot be scored


def _pass_identity(adapter, dataset, methods, config):
    """What the pass's per-image values depend on (`resume.PassShards`)."""
    settings = {k: v for k, v in dataclasses.asdict(config).items()
                if not k.startswith("sanity_")}
    return {"model": resume.model_fingerprint(adapter), "model_settings": adapter.settings(),
            "methods": {m: adapter.method_settings(m) for m in methods},
            "config": settings, "dataset": f"{dataset.name}/{dataset.split}",
            "dataset_size": len(dataset), "dataset_source": getattr(dataset, "source", "")}


def evaluate(adapter, dataset, out_dir, config=EvalConfig(), overwrite=False, strategy=None):
    """Runs the metrics of `config` and writes metrics.json, report.md,
    examples.png, curves.png (deletion/insertion) and sanity.png to
    `out_dir`, which is created only once the results are ready.

    The files are written together or not at all (`tfcaf.outputs`): a run
    that fails, a full disk included, leaves `out_dir` as it was; one that
    succeeds replaces the files of the previous run there and removes those
    it did not write again. A file in `out_dir` that no tfcaf run wrote is
    refused before any image is run. The pass is resumable
    (`tfcaf.evaluation.resume`): the same call after a crash or Ctrl-C
    recomputes only the batches it had not finished. Under a
    `tf.distribute` `strategy` the replicas and workers share the batches
    (`tfcaf.distribute.replicas`) and the numbers are those of a one-device
    run; the chief writes the results.

    Args:
        adapter: a `KerasAdapter` or `SavedModelAdapter`.
        dataset: a `tfcaf.data` dataset (images, labels, boxes).
        out_dir: output folder.
        config: an `EvalConfig`.
        overwrite: discard an unfinished run into `out_dir` with other
            settings instead of refusing it.
        strategy: a `tf.distribute.Strategy` (`tfcaf.distribute.strategy.
            make_strategy`), or None: one device. With several workers,
            `out_dir` must be on a file system they share.

    Returns:
        The metrics dict written to metrics.json: "methods" (method ->
        metric -> value), "settings" (everything a number depends on: the
        metrics' settings, the model, per method its layer, filter and
        resolved solver, and the tfcaf / TensorFlow versions), "protocols",
        "degenerate_maps" (method -> constant or non-finite raw maps of the
        pass) and, per metric, "retrieval", "top1_accuracy", "sanity";
        None on a worker that is not the chief.
    """
    config = config.validate().with_metric_options().validate()
    metrics = [registry.metric(n) for n in config.metrics]
    _check(metrics, adapter, dataset)
    methods = _usable_methods(adapter, config.methods)
    mapping = any(m.scope == "maps" for m in metrics)
    if mapping and not methods:
        raise TfcafError("no --methods apply to this model")
    chief = is_chief(strategy or tf.distribute.get_strategy())
    if chief:
        outputs = OutputSet(out_dir, "out_dir", staged=True)
        outputs.claim([os.path.join(out_dir, name) for name in _file_names(metrics, mapping)])
    log.info("evaluating %s on %s/%s", ", ".join(config.metrics), dataset.name, dataset.split)
    passed = methods if mapping else []
    shards = resume.PassShards(out_dir, _pass_identity(adapter, dataset, passed, config),
                               overwrite, chief)
    result = runner.run_pass(adapter, dataset, passed, config, shards=shards, strategy=strategy)
    if not chief:
        log.info("this worker's batches are in %s; the chief writes the results", shards.folder)
        return None
    explained = methods if mapping or "sanity" in config.metrics else []
    summary = {"dataset": f"{dataset.name}/{dataset.split}", "images": int(len(result.labels)),
               "methods": {m: {} for m in (methods if mapping else [])},
               "settings": {**_settings(config, adapter, explained),
                            "devices": _devices(strategy)}, "protocols": {},
               "degenerate_maps": result.degenerate}
    for method, count in result.degenerate.items():
        if count:
            log.warning("warning: %s", degenerate_warning(method, count, len(result.labels)))
    curves = _fill(summary, result, adapter, config)
    if "sanity" in config.metrics:
        summary["sanity_mode"] = "cascading" if config.sanity_cascading else "independent"
        summary["sanity"] = _sanity(adapter, dataset, methods, config)
    try:
        _write(outputs, summary, result, methods, config, curves)
        outputs.finish()
    except BaseException:  # Ctrl-C too: no half set of files
        outputs.discard()
        raise
    shards.remove()
    log.info("wrote %s", os.path.join(out_dir, "report.md"))
    return summary


def _file_names(metrics, mapping):
    """The files a run with `metrics` may write (`_write`)."""
    names = [m.name for m in metrics]
    return (["metrics.json", "report.md"] + (["sanity.png"] if "sanity" in names else [])
            + (["curves.png"] if any(m.curves for m in metrics) else [])
            + (["examples.png"] if mapping else []))


def _settings(config, adapter, methods):
    """Everything a number depends on, for metrics.json: the metrics'
    settings (each metric's resolved options), the model
    (`adapter.settings()`), each method's layer, filter and resolved solver
    (`adapter.method_settings`), and the versions."""
    settings = {"box_protocol": config.box_protocol, "cam_threshold": config.cam_threshold,
                "iou_threshold": config.iou_threshold, "seed": config.seed,
                "maxboxacc_thresholds": "0, 0.01, ..., 0.99", "nmi_inits": config.nmi_inits,
                "max_images": config.max_images, "model": adapter.settings(),
                "methods": {m: adapter.method_settings(m) for m in methods},
                "metric_options": runner.metric_options(config), "versions": versions()}
    if "sanity" in config.metrics:
        settings.update(sanity_images=config.sanity_images, sanity_stages=config.sanity_stages,
                        sanity_mode="cascading" if config.sanity_cascading else "independent")
    if any("scores" in registry.metric(n).needs for n in config.metrics):
        settings.update(faithfulness_step=config.faithfulness_step or "image width",
                        substrate_rgb=[float(v) for v in adapter.scores_input()[1]],
                        blur={"kernel": fm.BLUR_SIZE, "sigma": fm.BLUR_SIGMA})
    if "pointing_game" in config.metrics:
        settings["pointing_tolerance_px"] = config.pointing_tolerance
    return settings


def _devices(strategy):
    """What the pass ran on, for the record (the numbers do not depend on
    it, `tfcaf.distribute.replicas`)."""
    strategy = strategy or tf.distribute.get_strategy()
    names = ((tf.distribute.MultiWorkerMirroredStrategy, "multi_worker"),
             (tf.distribute.MirroredStrategy, "mirrored"))
    name = next((n for kind, n in names if isinstance(strategy, kind)),
                "default" if strategy is tf.distribute.get_strategy() else type(strategy).__name__)
    return {"strategy": name, "replicas": int(strategy.num_replicas_in_sync)}


def _protocol(metric, options, settings, embedding):
    """The report's protocol sentence of `metric`, its options filled in."""
    score = "cosine similarity to the image's embedding" if embedding else \
        "softmax probability of the ground-truth class"
    substrate = ", ".join(f"{v:g}" for v in settings.get("substrate_rgb", ()))
    shown = {k: v if v is not None else "image width" if k == "step" else "the default"
             for k, v in options.items()}
    text = metric.protocol[options["protocol"]] if isinstance(metric.protocol, dict) \
        else metric.protocol
    return text.format(
        score=score, substrate=substrate,
        box_reference=_BOX_REFERENCE.get(options.get("box_protocol"), ""), **shown)


def _fill(summary, result, adapter, config):
    """Adds every requested metric and its protocol line to `summary`;
    returns the mean curves (method -> name -> (S + 1,))."""
    options = runner.metric_options(config)
    protocols, curves = summary["protocols"], {}
    if any(registry.metric(n).scope == "maps" for n in config.metrics):
        table, top1, curves, missing = runner.map_metric_tables(result, adapter.embedding,
                                                                config)
        _merge(summary, table)
        summary["undefined_values"] = missing
        if "iou" in config.metrics:
            summary["top1_condition"] = "R@1" if adapter.embedding else "top-1 class"
            summary["top1_accuracy"] = top1
    if any(registry.metric(n).scope == "outputs" for n in config.metrics):
        summary["retrieval"] = runner.output_metrics(result, config)
    for name in config.metrics:
        metric = registry.metric(name)
        if metric.protocol and metric.scope != "model":
            protocols[name] = _protocol(metric, options[name], summary["settings"],
                                        adapter.embedding)
    return curves


def _merge(summary, table):
    for method, values in table.items():
        summary["methods"][method].update(values)


def _sanity(adapter, dataset, methods, config):
    images, labels, _ = next(iter(dataset.evenly_spaced(config.sanity_images,
                                                        config.sanity_images)))
    return sanity.randomization_check(adapter, images.numpy(), labels.numpy(), methods,
                                      stages=config.sanity_stages,
                                      cascading=config.sanity_cascading, seed=config.seed)


def _report_lines(summary, methods):
    lines = [f"# Evaluation on {summary['dataset']} ({summary['images']} images)", ""]
    columns = list(dict.fromkeys(c for v in summary["methods"].values() for c in v))
    if columns:
        percent = {c for m in registry.METRICS.values() for c in m.percent}
        lines += [report.markdown_table(summary["methods"], columns,
                                        percent_columns=percent), "",
                  "Columns in %: " + (", ".join(c for c in columns if c in percent) or "none")
                  + "; the others as computed. Protocols:", ""]
        lines += [f"- {name}: {text}." for name, text in summary["protocols"].items()
                  if registry.metric(name).scope == "maps"]
        if "top1_accuracy" in summary:
            lines.append(f"- Top-1 condition: {summary['top1_condition']} "
                         f"({100 * summary['top1_accuracy']:.1f}% of images).")
        for method, counts in summary.get("undefined_values", {}).items():
            shown = ", ".join(f"{column} on {count} image(s)" for column, count in counts.items())
            lines.append(f"- {method}: no value (NaN, e.g. a constant map's correlation) for "
                         f"{shown}; means over the others.")
        lines.append("")
    if "retrieval" in summary:
        lines += [report.markdown_table({"embedding": summary["retrieval"]},
                                        list(summary["retrieval"]), first="net"), ""]
        lines += [f"{name}: {text}." for name, text in summary["protocols"].items()
                  if registry.metric(name).scope == "outputs"] + [""]
    lines += _settings_lines(summary)
    if "sanity" in summary:
        table = {r["layer"]: {m: r[m]["spearman"] for m in methods} for r in summary["sanity"]}
        first = "randomised down to" if summary["sanity_mode"] == "cascading" else "randomised"
        lines += [f"## Sanity check: Spearman correlation of |maps| with the trained maps "
                  f"({summary['sanity_mode']} randomisation, output layer first)", "",
                  report.markdown_table(table, methods, first=first, percent=False), "",
                  "![sanity](sanity.png)", ""]
    return lines


def _settings_lines(summary):
    """report.md's record of what the numbers depend on (all of it is in
    metrics.json's "settings")."""
    settings = summary["settings"]
    model = settings["model"]
    lines = ["## Settings", "",
             f"- Model: {model['source']} ({model['format']}, {model['output']} output).",
             "- Versions: " + ", ".join(f"{k} {v}" for k, v in settings["versions"].items())
             + ("; exported with " + ", ".join(f"{k} {v}" for k, v in
                                              model["export_versions"].items())
                if model.get("export_versions") else "") + ".",
             f"- Devices: --strategy={settings['devices']['strategy']}, "
             f"{settings['devices']['replicas']} replica(s) (each explains whole batches: "
             "the numbers do not depend on them)."]
    for method, values in settings["methods"].items():
        parts = [f"layer `{values['layer']}`" if values.get("layer") else
                 values.get("map", "layer unknown")]
        if values.get("filter"):
            parts.append(f"filter {values['filter']}")
        if "solver" in values:
            solver = values["solver"]
            parts.append("solver " + (", ".join(f"{k}={v}" for k, v in sorted(solver.items()))
                                      if solver else "not recorded by the export"))
            if values.get("fixed_at_export"):
                parts.append("fixed at export")
        count = summary["degenerate_maps"].get(method)
        if count:
            parts.append(f"{count} degenerate (constant or non-finite) maps")
        lines.append(f"- {method}: {'; '.join(parts)}.")
    return lines + [""]


def _write(outputs, summary, result, methods, config, curves):
    """Writes every file of the run through the `OutputSet` `outputs`."""
    def write(name, writer, *args):
        outputs.write(os.path.join(outputs.folder, name), lambda path: writer(path, *args))
    write("metrics.json", report.write_json, summary)
    lines = _report_lines(summary, methods)
    if "sanity" in summary:
        write("sanity.png", report.sanity_plot, summary["sanity"], methods)
    if curves:
        write("curves.png", report.curves_plot, curves)
        lines += ["![deletion and insertion curves](curves.png)", ""]
    if summary["methods"]:
        size = result.examples["images"][0].shape[:2]
        write("examples.png", report.example_grid, result.examples,
              lambda raw, heat: loc.predicted_box(
                  raw if config.box_protocol == "wsolevaluation" else heat,
                  config.cam_threshold, config.box_protocol, size))
        lines += ["![examples](examples.png)", "",
                  f"Red: predicted box ({config.box_protocol} protocol, τ = "
                  f"{config.cam_threshold}); green: ground truth.", ""]
    write("report.md", report.write_text, "\n".join(lines))
