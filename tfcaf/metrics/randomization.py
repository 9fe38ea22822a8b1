"""How much a method's maps change when the model's weights are
randomised (the model-randomisation sanity check, Adebayo et al. 2018;
`tfcaf.evaluation.sanity` runs the randomisation)."""

import numpy as np
from scipy import stats


def spearman_per_image(a, b):
    """(N,) rank correlation of |a| and |b| per image, raw maps (N, h, w),
    ties ranked by their mean; 0 for a constant map. Quantus's MPRT
    (top_down, abs, normalised by the batch's maximum, which no rank
    changes) computes the same (tests/test_randomization_golden.py)."""
    values = []
    for x, y in zip(a, b):
        x, y = np.abs(x).ravel(), np.abs(y).ravel()
        values.append(0.0 if x.std() == 0 or y.std() == 0 else stats.spearmanr(x, y)[0])
    return np.array(values, np.float64)


def spearman(a, b):
    """Mean over images of `spearman_per_image`."""
    return float(np.mean(spearman_per_image(a, b)))


def ssim(a, b):
    """Mean SSIM of (N, H, W) maps in [0, 1]."""
    import tensorflow as tf
    a = tf.convert_to_tensor(np.asarray(a, np.float32)[..., None])
    b = tf.convert_to_tensor(np.asarray(b, np.float32)[..., None])
    size = min(11, a.shape[1], a.shape[2])
    return float(tf.reduce_mean(tf.image.ssim(a, b, max_val=1.0, filter_size=size)))


def map_similarity(trained_maps, trained_heatmaps, random_maps, random_heatmaps):
    """{"spearman": of the absolute raw maps (N, h, w), "ssim": of the
    heatmaps (N, H, W) in [0, 1]} between a trained and a randomised model."""
    return {"spearman": spearman(trained_maps, random_maps),
            "ssim": ssim(trained_heatmaps, random_heatmaps)}
