"""`evaluate`: metrics, report and pictures for one model on one dataset."""

import logging
import os


from tfcaf.evaluation import report, runner, sanity
from tfcaf.errors import TfcafError
from tfcaf.evaluation.adapters import KerasAdapter
from tfcaf.evaluation.config import METRICS, EvalConfig
from tfcaf.metrics import localization as loc
log = logging.getLogger("tfcaf.evaluate")


def _usable_methods(adapter, methods):
    usable = []
    for method in methods:
        reason = adapter.supports(method)
        if reason is None:
            usable.append(method)
        else:
            log.warning("skipping %s: %s", method, reason)
    return usable


def _check(metrics, adapter):
    if {"recall", "nmi"} & set(metrics) and not adapter.embedding:
        raise TfcafError("--metric=recall/nmi needs a retrieval net (embedding output)")
    if "sanity" in metrics and not isinstance(adapter, KerasAdapter):
        raise TfcafError("--metric=sanity randomises weights: give a .keras model")


def evaluate(adapter, dataset, out_dir, config=EvalConfig()):
    """Runs the metrics of `config` (an `EvalConfig`) and writes
    metrics.json, report.md, examples.png (and sanity.png) to `out_dir`.
    Returns the metrics dict."""
    config.validate()
    metrics, methods, cam_threshold = config.metrics, config.methods, config.cam_threshold
    iou_threshold, max_images, batch_size = config.iou_threshold, config.max_images, \
        config.batch_size
    sanity_images, sanity_stages, seed = config.sanity_images, config.sanity_stages, config.seed
    sanity_cascading = config.sanity_cascading
    _check(metrics, adapter)
    methods = _usable_methods(adapter, methods)
    localizing = {"iou", "maxboxacc"} & set(metrics)
    if localizing and not methods:
        raise TfcafError("no --methods apply to this model")
    os.makedirs(out_dir, exist_ok=True)
    result = runner.run_pass(adapter, dataset, methods if localizing else [],
                             cam_threshold, max_images, batch_size,
                             sweep="maxboxacc" in metrics)
    summary = {"dataset": f"{dataset.name}/{dataset.split}", "images": int(len(result.labels)),
               "methods": {m: {} for m in methods}}
    if "iou" in metrics:
        table, top1 = runner.localization_metrics(result, adapter.embedding, iou_threshold)
        summary["top1_condition"] = "R@1" if adapter.embedding else "top-1 class"
        summary["top1_accuracy"] = top1
        for method, values in table.items():
            summary["methods"][method].update(values)
    if "maxboxacc" in metrics:
        for method, values in runner.maxboxacc_metrics(result).items():
            summary["methods"][method].update(values)
    if {"recall", "nmi"} & set(metrics):
        summary["retrieval"] = runner.retrieval_metrics(result, seed)
    if "sanity" in metrics:
        summary["sanity_mode"] = "cascading" if sanity_cascading else "independent"
        summary["sanity"] = _sanity(adapter, dataset, methods, sanity_images,
                                    sanity_stages, seed, out_dir, sanity_cascading)
    _write(out_dir, summary, result, methods, cam_threshold, bool(localizing))
    return summary


def _sanity(adapter, dataset, methods, count, stages, seed, out_dir, cascading):
    images, labels, _ = next(iter(dataset.evenly_spaced(count, count)))
    rows = sanity.randomization_check(adapter, images.numpy(), labels.numpy(), methods,
                                      stages=stages, cascading=cascading, seed=seed)
    report.sanity_plot(os.path.join(out_dir, "sanity.png"), rows, methods)
    return rows


def _write(out_dir, summary, result, methods, cam_threshold, pictures):
    report.write_json(os.path.join(out_dir, "metrics.json"), summary)
    lines = [f"# Evaluation on {summary['dataset']} ({summary['images']} images)", ""]
    columns = sorted({k for v in summary["methods"].values() for k in v})
    if columns:
        lines += [report.markdown_table(summary["methods"], columns), "",
                  f"Localization columns in %; boxes from the largest component at "
                  f"τ = {cam_threshold}."]
        if "top1_accuracy" in summary:
            lines.append(f"Top-1 condition: {summary['top1_condition']} "
                         f"({100 * summary['top1_accuracy']:.1f}% of images).")
        lines.append("")
    if "retrieval" in summary:
        lines += [report.markdown_table({"embedding": summary["retrieval"]},
                                        list(summary["retrieval"]), first="net"), ""]
    if "sanity" in summary:
        table = {r["layer"]: {m: r[m]["spearman"] for m in methods} for r in summary["sanity"]}
        first = "randomised down to" if summary["sanity_mode"] == "cascading" else "randomised"
        lines += [f"## Sanity check: Spearman correlation of |maps| with the trained maps "
                  f"({summary['sanity_mode']} randomisation, output layer first)", "",
                  report.markdown_table(table, methods, first=first, percent=False), "",
                  "![sanity](sanity.png)", ""]
    if pictures and methods:
        report.example_grid(os.path.join(out_dir, "examples.png"), result.examples,
                            lambda h: loc.largest_component_box(h, cam_threshold))
        lines += ["![examples](examples.png)", "",
                  "Red: predicted box; green: ground truth.", ""]
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("\n".join(lines))
    log.info("wrote %s", os.path.join(out_dir, "report.md"))
