"""One pass over a dataset: outputs, heatmaps per method, and the per-image
values (IoUs, faithfulness scores) that every metric is computed from."""

import dataclasses
import logging
import sys
import time

import numpy as np

from tfcaf.evaluation.adapters import check_classes, top1_correct
from tfcaf.metrics import faithfulness as fm
from tfcaf.metrics import localization as loc
from tfcaf.metrics.degenerate import degenerate_maps
from tfcaf.metrics.retrieval import nmi, recall_at_k

log = logging.getLogger("tfcaf.evaluate")
FAITHFULNESS = ("deletion", "insertion", "average_drop", "pointing_game")


@dataclasses.dataclass
class Pass:
    """What one pass collected (N images, T thresholds).

    Attributes:
        outputs: (N, K) logits/probabilities or (N, D) embeddings.
        labels: (N,) class ids.
        ious: method -> (N,) best IoU of the largest-component box at the
            CAM threshold.
        sweep_v1, sweep_v2: method -> (N, T) best IoU at each MaxBoxAcc
            threshold (largest component / all components).
        faithfulness: method -> name -> (N,) per-image values
            ("deletion", "insertion" AUCs, "drop" in [0, 1], "increase" and
            "pointing" bool) and "deletion_curve"/"insertion_curve" (N, S + 1).
        examples: first images (n, H, W, 3), their GT boxes, and method ->
            (n, H, W) heatmaps and (n, h, w) raw maps, for the report's
            picture grid.
        degenerate: method -> number of constant or non-finite raw maps
            (`tfcaf.metrics.degenerate`).
    """
    outputs: np.ndarray
    labels: np.ndarray
    ious: dict
    sweep_v1: dict
    sweep_v2: dict
    faithfulness: dict
    examples: dict
    degenerate: dict


def _progress(done, total, started):
    rate = done / max(time.time() - started, 1e-9)
    bar = "#" * int(30 * done / max(total, 1))
    sys.stderr.write(f"\r[{bar:<30}] {done}/{total} images  {rate:.1f} img/s")
    sys.stderr.flush()


def _box_values(raw, heatmaps, boxes, image_size, config, sweep):
    """Per image: IoU at τ and, with `sweep`, the (T,) v1/v2 sweeps, under
    `config.box_protocol` (wsolevaluation: raw maps, as its code takes them)."""
    maps = raw if config.box_protocol == "wsolevaluation" else heatmaps
    thresholds = loc.MAXBOXACC_THRESHOLDS
    ious, v1, v2 = [], [], []
    for heatmap, gt in zip(maps, boxes):
        ious.append(loc.box_iou_at(heatmap, gt, config.cam_threshold, config.box_protocol,
                                   image_size))
        if sweep:
            largest, best = loc.sweep_ious(heatmap, gt, thresholds, config.box_protocol,
                                           image_size)
            v1.append(largest)
            v2.append(best)
    return ious, v1, v2


def _faithfulness_values(adapter, images, labels, heatmaps, boxes, metrics, config):
    """Per-image faithfulness values of one batch (see `Pass.faithfulness`)."""
    predict, substrate = adapter.scores_input()
    options = dict(embedding=adapter.embedding, substrate=substrate,
                   batch_size=config.batch_size)
    values = {}
    if {"deletion", "insertion"} & set(metrics):
        curves = fm.deletion_insertion(predict, images, heatmaps, labels,
                                       step=config.faithfulness_step, **options)
        values.update(curves)
    if "average_drop" in metrics:
        drop = fm.average_drop_increase(predict, images, heatmaps, labels, **options)
        values.update(drop=drop["drop"], increase=drop["increase"])
    if "pointing_game" in metrics:
        values["pointing"] = fm.pointing_game(
            heatmaps, boxes, tolerance=config.pointing_tolerance)["hits"]
    return values


def _append(store, values):
    for key, value in values.items():
        store.setdefault(key, []).append(np.asarray(value))


def run_pass(adapter, dataset, methods, config, example_count=8):
    """Runs `adapter` over `dataset` (or an evenly spaced `config.max_images`
    slice), computing what `config.metrics` need for each of `methods`.

    Raises:
        TfcafError: the dataset has more classes than the classifier has
            outputs (`adapters.check_classes`), before any image is run.
    """
    check_classes(adapter, dataset)
    metrics = set(config.metrics)
    localizing, sweep = bool({"iou", "maxboxacc"} & metrics), "maxboxacc" in metrics
    faithful = [m for m in FAITHFULNESS if m in metrics]
    total = min(len(dataset), config.max_images or len(dataset))
    outputs, labels = [], []
    per_method = {m: {"ious": [], "v1": [], "v2": [], "faithfulness": {}, "degenerate": 0}
                  for m in methods}
    examples = {"images": [], "boxes": [], "heatmaps": {m: [] for m in methods},
                "maps": {m: [] for m in methods}}
    started, done = time.time(), 0
    for images, batch_labels, boxes in dataset.evenly_spaced(total, config.batch_size):
        images, batch_labels, boxes = images.numpy(), batch_labels.numpy(), boxes.numpy()
        outputs.append(adapter.outputs(images))
        labels.append(batch_labels)
        room = example_count - len(examples["images"])
        examples["images"] += list(images[:room])
        examples["boxes"] += list(boxes[:room])
        for method in methods:
            raw, heatmaps = adapter.maps(images, batch_labels, method)
            examples["heatmaps"][method] += list(heatmaps[:room])
            examples["maps"][method] += list(raw[:room])
            store = per_method[method]
            store["degenerate"] += int(degenerate_maps(raw).sum())
            if localizing:
                ious, v1, v2 = _box_values(raw, heatmaps, boxes, images.shape[1:3], config,
                                           sweep)
                store["ious"] += ious
                store["v1"] += v1
                store["v2"] += v2
            if faithful:
                _append(store["faithfulness"], _faithfulness_values(
                    adapter, images, batch_labels, heatmaps, boxes, faithful, config))
        done += len(images)
        _progress(done, total, started)
    sys.stderr.write("\n")
    pick = lambda key: {m: np.array(v[key]) for m, v in per_method.items()}
    faithfulness = {m: {k: np.concatenate(v) for k, v in per_method[m]["faithfulness"].items()}
                    for m in methods}
    return Pass(np.concatenate(outputs), np.concatenate(labels), pick("ious"), pick("v1"),
                pick("v2"), faithfulness,
                {**examples, **{key: {m: np.array(v) for m, v in examples[key].items()}
                                for key in ("heatmaps", "maps")}},
                {m: v["degenerate"] for m, v in per_method.items()})


def localization_metrics(result, embedding, iou_threshold=0.5):
    """method -> {top1_loc, gt_known_loc} in [0, 1], and the top-1 rate."""
    correct = top1_correct(result.outputs, result.labels, embedding)
    table = {}
    for method, ious in result.ious.items():
        accuracy = loc.accuracy_from_ious(ious, correct, iou_threshold)
        table[method] = {k: accuracy[k] for k in ("top1_loc", "gt_known_loc")}
    return table, float(np.mean(correct))


def maxboxacc_metrics(result):
    """method -> {maxboxacc_v1, best_threshold, maxboxacc_v2}."""
    table = {}
    for method in result.sweep_v1:
        v1 = loc.max_box_acc_from_ious(result.sweep_v1[method], version=1)
        v2 = loc.max_box_acc_from_ious(result.sweep_v2[method], version=2)
        table[method] = {"maxboxacc_v1": v1["max_box_acc"],
                         "best_threshold": v1["best_threshold"],
                         "maxboxacc_v2": v2["max_box_acc"]}
    return table


def faithfulness_metrics(result):
    """method -> {deletion, insertion (AUC in [0, 1]), average_drop,
    increase_in_confidence (in [0, 1], shown as %), pointing_game}, and
    method -> {"deletion", "insertion"} mean curves (S + 1,)."""
    table, curves = {}, {}
    for method, values in result.faithfulness.items():
        row = {k: float(values[k].mean()) for k in ("deletion", "insertion") if k in values}
        if "drop" in values:
            row.update(average_drop=float(values["drop"].mean()),
                       increase_in_confidence=float(values["increase"].mean()))
        if "pointing" in values:
            row["pointing_game"] = float(values["pointing"].mean())
        table[method] = row
        method_curves = {k: values[f"{k}_curve"].mean(axis=0)
                         for k in ("deletion", "insertion") if f"{k}_curve" in values}
        if method_curves:  # none without deletion/insertion: no curves.png
            curves[method] = method_curves
    return table, curves


def retrieval_metrics(result, seed=0, nmi_inits=10, metrics=("recall", "nmi")):
    """{"recall@K": ...} (with "recall" in `metrics`) and "nmi" (with
    "nmi") of the embeddings of the pass: only what was asked, as NMI's
    K-means is the slow part."""
    values = {}
    if "recall" in metrics:
        recalls = recall_at_k(result.outputs, result.labels, ks=(1, 2, 4, 8))
        values.update({f"recall@{k}": float(v) for k, v in recalls.items()})
    if "nmi" in metrics:
        values["nmi"] = float(nmi(result.outputs, result.labels, seed=seed, n_init=nmi_inits))
    return values
