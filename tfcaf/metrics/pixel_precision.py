"""PxAP (Choe et al., "Evaluating Weakly Supervised Object Localization
Methods Right", CVPR 2020): the average precision of heatmap pixels
against ground-truth foreground masks, over all pixels of a set.

Equal to clovaai/wsolevaluation's `MaskEvaluator` (evaluation.py @ 96f4b88):
each heatmap value falls into the bins [0, b), [b, 2b), ..., [1 − b, 1),
[1, 2), [2, 3) (b = `interval`, 0.001 as its `--cam_curve_interval`); the
foreground and background histograms, summed over the set, give precision
and recall at every threshold, from the highest down, and
AP = Σ precision_i · (recall_i − recall_{i−1}) over thresholds with a
positive prediction. Pixels whose mask value is neither 0 nor 1 (255 in
its ignore region) count for neither.
"""

import numpy as np

from tfcaf.errors import TfcafError

INTERVAL = 0.001


def bin_edges(interval=INTERVAL):
    """(B + 1,) edges 0, b, ..., 1 − b, 1, 2, 3, as wsolevaluation builds
    them (`np.arange(0, 1, b)` then 1, 2, 3)."""
    return np.append(np.arange(0, 1, interval), [1.0, 2.0, 3.0])


def mask_histograms(heatmaps, masks, interval=INTERVAL):
    """Per image, the histograms of heatmap values on foreground and on
    background pixels.

    Args:
        heatmaps: (N, H, W) in [0, 1].
        masks: (N, H, W): 1 foreground, 0 background, other values ignored.
        interval: bin width b.

    Returns:
        dict "foreground", "background": (N, B) float64 counts.
    """
    heatmaps = np.asarray(heatmaps, np.float64)
    masks = np.asarray(masks)
    if heatmaps.shape != masks.shape or heatmaps.ndim != 3:
        raise TfcafError(f"pxap: heatmaps {heatmaps.shape} and masks {masks.shape} must be "
                         "the same (N, H, W)")
    if not np.isfinite(heatmaps).all() or heatmaps.min(initial=0) < 0 or \
            heatmaps.max(initial=0) > 1:
        raise TfcafError("pxap: heatmaps must be finite and in [0, 1] "
                         f"(min {np.nanmin(heatmaps):g}, max {np.nanmax(heatmaps):g})")
    edges = bin_edges(interval)
    foreground = [np.histogram(h[m == 1], bins=edges)[0] for h, m in zip(heatmaps, masks)]
    background = [np.histogram(h[m == 0], bins=edges)[0] for h, m in zip(heatmaps, masks)]
    shape = (len(heatmaps), len(edges) - 1)
    return {"foreground": np.array(foreground, np.float64).reshape(shape),
            "background": np.array(background, np.float64).reshape(shape)}


def average_precision(foreground, background):
    """AP in [0, 1] from (B,) histograms summed over a set (wsolevaluation's
    `MaskEvaluator.compute`, which reports it ×100)."""
    tp = np.asarray(foreground, np.float64)[::-1].cumsum()
    fp = np.asarray(background, np.float64)[::-1].cumsum()
    fn = tp[-1] - tp
    if ((tp + fn) <= 0).all():
        raise TfcafError("pxap: no foreground pixel in the masks")
    if ((tp + fp) <= 0).all():
        raise TfcafError("pxap: no pixel in any bin")
    predicted = (tp + fp) != 0
    with np.errstate(invalid="ignore", divide="ignore"):
        precision, recall = tp / (tp + fp), tp / (tp + fn)
    return float((precision[1:] * np.diff(recall))[predicted[1:]].sum())


def pxap(heatmaps, masks, interval=INTERVAL):
    """PxAP in [0, 1] of (N, H, W) heatmaps in [0, 1] against (N, H, W)
    masks (1 foreground, 0 background, others ignored), over all pixels."""
    histograms = mask_histograms(heatmaps, masks, interval)
    return average_precision(histograms["foreground"].sum(0), histograms["background"].sum(0))


def batch_histograms(heatmaps, masks, interval=INTERVAL):
    """The registry's batch function: `mask_histograms` summed over the
    batch, (1, B) each, so that a pass keeps 2 · B counts per batch, not
    per image (B = 1,002 bins at the default interval)."""
    histograms = mask_histograms(heatmaps, masks, interval)
    return {key: value.sum(axis=0, keepdims=True) for key, value in histograms.items()}


def pxap_summary(values, correct, options):
    """The registry's summary: {"pxap": AP of the whole pass} from the
    batches' histograms."""
    del correct, options
    return {"pxap": average_precision(values["foreground"].sum(0),
                                      values["background"].sum(0))}
