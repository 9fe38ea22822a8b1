"""One pass over a dataset: outputs, heatmaps per method, and the IoUs that
every localization metric is computed from."""

import dataclasses
import logging
import sys
import time

import numpy as np

from tfcaf.evaluation.adapters import top1_correct
from tfcaf.metrics import localization as loc
from tfcaf.metrics.retrieval import nmi, recall_at_k

log = logging.getLogger("tfcaf.evaluate")


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
        examples: first images (n, H, W, 3), their GT boxes, and method ->
            (n, H, W) heatmaps, for the report's picture grid.
    """
    outputs: np.ndarray
    labels: np.ndarray
    ious: dict
    sweep_v1: dict
    sweep_v2: dict
    examples: dict


def _progress(done, total, started):
    rate = done / max(time.time() - started, 1e-9)
    bar = "#" * int(30 * done / max(total, 1))
    sys.stderr.write(f"\r[{bar:<30}] {done}/{total} images  {rate:.1f} img/s")
    sys.stderr.flush()


def run_pass(adapter, dataset, methods, cam_threshold=0.2, max_images=None,
             batch_size=32, sweep=True, example_count=8):
    """Runs `adapter` over `dataset` (or an evenly spaced `max_images` slice)."""
    total = min(len(dataset), max_images or len(dataset))
    thresholds = loc.MAXBOXACC_THRESHOLDS
    outputs, labels = [], []
    ious = {m: [] for m in methods}
    v1, v2 = {m: [] for m in methods}, {m: [] for m in methods}
    examples = {"images": [], "boxes": [], "heatmaps": {m: [] for m in methods}}
    started, done = time.time(), 0
    for images, batch_labels, boxes in dataset.evenly_spaced(total, batch_size):
        images, batch_labels, boxes = images.numpy(), batch_labels.numpy(), boxes.numpy()
        outputs.append(adapter.outputs(images))
        labels.append(batch_labels)
        room = example_count - len(examples["images"])
        examples["images"] += list(images[:room])
        examples["boxes"] += list(boxes[:room])
        for method in methods:
            heatmaps = adapter.heatmaps(images, batch_labels, method)
            examples["heatmaps"][method] += list(heatmaps[:room])
            for heatmap, gt in zip(heatmaps, boxes):
                box = loc.largest_component_box(heatmap, cam_threshold)
                ious[method].append(loc.best_iou(np.zeros((0, 4)) if box is None else box[None], gt))
                if sweep:
                    largest, best = loc.sweep_ious(heatmap, gt, thresholds)
                    v1[method].append(largest)
                    v2[method].append(best)
        done += len(images)
        _progress(done, total, started)
    sys.stderr.write("\n")
    stack = lambda d: {m: np.array(v) for m, v in d.items()}
    return Pass(np.concatenate(outputs), np.concatenate(labels), stack(ious), stack(v1),
                stack(v2), {**examples, "heatmaps": {m: np.array(v) for m, v in
                                                   examples["heatmaps"].items()}})


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


def retrieval_metrics(result, seed=0):
    """{"recall@K": ...} and NMI of the embeddings of the pass."""
    recalls = recall_at_k(result.outputs, result.labels, ks=(1, 2, 4, 8))
    return {**{f"recall@{k}": float(v) for k, v in recalls.items()},
            "nmi": float(nmi(result.outputs, result.labels, seed=seed))}
