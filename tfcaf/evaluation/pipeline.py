"""`evaluate`: metrics, report and pictures for one model on one dataset."""

import logging
import os

from tfcaf.data.checks import require_boxes
from tfcaf.errors import TfcafError
from tfcaf.evaluation import report, runner, sanity
from tfcaf.evaluation.adapters import KerasAdapter
from tfcaf.evaluation.config import EvalConfig
from tfcaf.metrics import faithfulness as fm
from tfcaf.metrics import localization as loc
from tfcaf.metrics.degenerate import degenerate_warning
from tfcaf.outputs import OutputSet
from tfcaf.versions import versions

log = logging.getLogger("tfcaf.evaluate")
_BOX_REFERENCE = {"wsolevaluation": "equal to clovaai/wsolevaluation@96f4b88",
                  "tfcaf": "tfcaf's connected-component boxes (docs/method.md §5)"}
_LOCALIZING = {"iou", "maxboxacc"}


def _usable_methods(adapter, methods):
    usable = []
    for method in methods:
        reason = adapter.supports(method)
        if reason is None:
            usable.append(method)
        else:
            log.warning("skipping %s: %s", method, reason)
    return usable


def _check(metrics, adapter, dataset):
    """User errors that can be told before any image is run."""
    boxed = sorted((_LOCALIZING | {"pointing_game"}) & set(metrics))
    if boxed:
        require_boxes(dataset, "--metric=" + ",".join(boxed))
    if {"recall", "nmi"} & set(metrics) and not adapter.embedding:
        raise TfcafError("--metric=recall/nmi needs a retrieval net (embedding output)")
    if "sanity" in metrics and not isinstance(adapter, KerasAdapter):
        raise TfcafError("--metric=sanity randomises weights: give a .keras model")
    if set(runner.FAITHFULNESS) & set(metrics):
        adapter.scores_input()  # raises when the model cannot be scored


def evaluate(adapter, dataset, out_dir, config=EvalConfig()):
    """Runs the metrics of `config` and writes metrics.json, report.md,
    examples.png, curves.png (deletion/insertion) and sanity.png to
    `out_dir`, which is created only once the results are ready.

    The files are written together or not at all (`tfcaf.outputs`): a run
    that fails, a full disk included, leaves `out_dir` as it was; one that
    succeeds replaces the files of the previous run there and removes those
    it did not write again. A file in `out_dir` that no tfcaf run wrote is
    refused before any image is run.

    Args:
        adapter: a `KerasAdapter` or `SavedModelAdapter`.
        dataset: a `tfcaf.data` dataset (images, labels, boxes).
        out_dir: output folder.
        config: an `EvalConfig`.

    Returns:
        The metrics dict written to metrics.json: "methods" (method ->
        metric -> value), "settings" (everything a number depends on: the
        metrics' settings, the model, per method its layer, filter and
        resolved solver, and the tfcaf / TensorFlow versions), "protocols",
        "degenerate_maps" (method -> constant or non-finite raw maps of the
        pass) and, per metric, "retrieval", "top1_accuracy", "sanity".
    """
    config.validate()
    metrics = set(config.metrics)
    _check(metrics, adapter, dataset)
    methods = _usable_methods(adapter, config.methods)
    mapping = (_LOCALIZING | set(runner.FAITHFULNESS)) & metrics
    if mapping and not methods:
        raise TfcafError("no --methods apply to this model")
    outputs = OutputSet(out_dir, "out_dir", staged=True)
    outputs.claim([os.path.join(out_dir, name) for name in _file_names(metrics, bool(mapping))])
    log.info("evaluating %s on %s/%s", ", ".join(sorted(metrics)), dataset.name, dataset.split)
    result = runner.run_pass(adapter, dataset, methods if mapping else [], config)
    explained = methods if mapping or "sanity" in metrics else []
    summary = {"dataset": f"{dataset.name}/{dataset.split}", "images": int(len(result.labels)),
               "methods": {m: {} for m in (methods if mapping else [])},
               "settings": _settings(config, adapter, explained), "protocols": {},
               "degenerate_maps": result.degenerate}
    for method, count in result.degenerate.items():
        if count:
            log.warning("warning: %s", degenerate_warning(method, count, len(result.labels)))
    curves = _fill(summary, result, adapter, config)
    if "sanity" in metrics:
        summary["sanity_mode"] = "cascading" if config.sanity_cascading else "independent"
        summary["sanity"] = _sanity(adapter, dataset, methods, config)
    try:
        _write(outputs, summary, result, methods, config, curves)
        outputs.finish()
    except BaseException:  # Ctrl-C too: no half set of files
        outputs.discard()
        raise
    log.info("wrote %s", os.path.join(out_dir, "report.md"))
    return summary


def _file_names(metrics, mapping):
    """The files a run with `metrics` may write (`_write`)."""
    return (["metrics.json", "report.md"] + (["sanity.png"] if "sanity" in metrics else [])
            + (["curves.png"] if set(runner.FAITHFULNESS) & metrics else [])
            + (["examples.png"] if mapping else []))


def _settings(config, adapter, methods):
    """Everything a number depends on, for metrics.json: the metrics'
    settings, the model (`adapter.settings()`), each method's layer, filter
    and resolved solver (`adapter.method_settings`), and the versions."""
    settings = {"box_protocol": config.box_protocol, "cam_threshold": config.cam_threshold,
                "iou_threshold": config.iou_threshold, "seed": config.seed,
                "maxboxacc_thresholds": "0, 0.01, ..., 0.99", "nmi_inits": config.nmi_inits,
                "max_images": config.max_images, "model": adapter.settings(),
                "methods": {m: adapter.method_settings(m) for m in methods},
                "versions": versions()}
    if "sanity" in config.metrics:
        settings.update(sanity_images=config.sanity_images, sanity_stages=config.sanity_stages,
                        sanity_mode="cascading" if config.sanity_cascading else "independent")
    if set(runner.FAITHFULNESS) & set(config.metrics):
        settings.update(faithfulness_step=config.faithfulness_step or "image width",
                        substrate_rgb=[float(v) for v in adapter.scores_input()[1]],
                        blur={"kernel": fm.BLUR_SIZE, "sigma": fm.BLUR_SIGMA},
                        pointing_tolerance_px=config.pointing_tolerance)
    return settings


def _fill(summary, result, adapter, config):
    """Adds every requested metric and its protocol line to `summary`;
    returns the deletion/insertion mean curves."""
    metrics, protocols = set(config.metrics), summary["protocols"]
    boxes = f"{config.box_protocol} protocol, {_BOX_REFERENCE[config.box_protocol]}"
    if "iou" in metrics:
        table, top1 = runner.localization_metrics(result, adapter.embedding,
                                                  config.iou_threshold)
        summary["top1_condition"] = "R@1" if adapter.embedding else "top-1 class"
        summary["top1_accuracy"] = top1
        _merge(summary, table)
        protocols["top1_loc, gt_known_loc"] = (
            f"largest-contour box at τ = {config.cam_threshold}, IoU ≥ "
            f"{config.iou_threshold}; {boxes}")
    if "maxboxacc" in metrics:
        _merge(summary, runner.maxboxacc_metrics(result))
        protocols["maxboxacc_v1, maxboxacc_v2"] = f"MaxBoxAcc / MaxBoxAccV2, {boxes}"
    if {"recall", "nmi"} & metrics:
        summary["retrieval"] = runner.retrieval_metrics(result, config.seed, config.nmi_inits,
                                                        metrics)
    if "nmi" in metrics:
        protocols["nmi"] = (f"scikit-learn KMeans(n_init={config.nmi_inits}, random_state="
                            f"{config.seed}) + NMI (geometric mean), as in the metric-"
                            "learning literature")
    if not set(runner.FAITHFULNESS) & metrics:
        return {}
    table, curves = runner.faithfulness_metrics(result)
    _merge(summary, {m: _faithfulness_columns(row) for m, row in table.items()})
    protocols.update(_faithfulness_protocols(summary["settings"], adapter.embedding))
    return curves


def _faithfulness_columns(row):
    names = {"deletion": "deletion_auc", "insertion": "insertion_auc"}
    return {names.get(k, k): v for k, v in row.items()}


def _faithfulness_protocols(settings, embedding):
    score = "cosine similarity to the image's embedding" if embedding else \
        "softmax probability of the ground-truth class"
    substrate = ", ".join(f"{v:g}" for v in settings["substrate_rgb"])
    return {
        "deletion_auc, insertion_auc": (
            f"RISE (Petsiuk et al. 2018): {score}, {settings['faithfulness_step']} pixels per "
            f"step, substrate RGB ({substrate}), insertion from eclique/RISE's Gaussian "
            "blur gkern(11, 5), trapezoid AUC on [0, 1]; deletion lower is better"),
        "average_drop, increase_in_confidence": (
            f"Grad-CAM++ (Chattopadhay et al. 2018): {score} on image ⊙ heatmap; Average "
            "Drop lower is better"),
        "pointing_game": (f"Zhang et al. 2016: maximum inside a GT box ± "
                          f"{settings['pointing_tolerance_px']} px"),
    }


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
    columns = [c for c in ("top1_loc", "gt_known_loc", "maxboxacc_v1", "best_threshold",
                           "maxboxacc_v2", "deletion_auc", "insertion_auc", "average_drop",
                           "increase_in_confidence", "pointing_game")
               if any(c in v for v in summary["methods"].values())]
    if columns:
        lines += [report.markdown_table(summary["methods"], columns), "",
                  "Columns in % except thresholds and AUCs (in [0, 1]). Protocols:", ""]
        lines += [f"- {names}: {text}." for names, text in summary["protocols"].items()
                  if names != "nmi"]
        if "top1_accuracy" in summary:
            lines.append(f"- Top-1 condition: {summary['top1_condition']} "
                         f"({100 * summary['top1_accuracy']:.1f}% of images).")
        lines.append("")
    if "retrieval" in summary:
        lines += [report.markdown_table({"embedding": summary["retrieval"]},
                                        list(summary["retrieval"]), first="net"), ""]
        if "nmi" in summary["protocols"]:
            lines += [f"NMI: {summary['protocols']['nmi']}.", ""]
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
                if model.get("export_versions") else "") + "."]
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
