"""Complexity of heatmaps as Quantus 0.6 computes it: Sparseness, the Gini
index of the attributions (Chalasani et al., ICML 2020; higher is sparser),
and Complexity, the entropy of their fractional contributions (Bhatt et al.,
IJCAI 2020; lower is simpler).

Both first preprocess the heatmaps as Quantus does (`quantus_preprocess`):
normalise (divide by the largest |value| of *all* the heatmaps passed in
one call, Quantus's `normalise_by_max` on the whole `a_batch`, not per
image), then abs. Their small constants (Sparseness adds 1e-7 to every
value, Complexity 1e-12 inside the log) are not scale free, so that
batch-wide normalisation changes the scores slightly (by ~1e-4 for a
one-hot map among larger maps); tfcaf follows it so that the scores equal
Quantus's on the same call (tests/test_quantus_golden.py).
"""

import numpy as np

from tfcaf.metrics.checks import check_heatmaps

SPARSENESS_EPSILON = 1e-7   # Quantus Sparseness: a += 1e-7 before the Gini index
COMPLEXITY_EPSILON = 1e-12  # Quantus Complexity: log(a + 1e-12)


def quantus_preprocess(heatmaps, abs=True, normalise=True):
    """Quantus's attribution preprocessing (`Metric.general_preprocess`).

    Args:
        heatmaps: (N, H, W) array.
        abs: take |value| (after normalising).
        normalise: divide by the largest |value| over all N heatmaps
            (Quantus's `normalise_by_max` over the whole batch; an all-zero
            batch is left as it is).

    Returns:
        (N, H, W) float64.
    """
    maps = np.array(heatmaps, np.float64)
    if normalise and np.any(maps != 0.0):
        maps = maps / np.max(np.abs(maps))
    return np.abs(maps) if abs else maps


def sparseness(heatmaps, *, abs=True, normalise=True):
    """Gini index of each heatmap, as Quantus `Sparseness` (its defaults).

    With a the n = H · W preprocessed values of a heatmap plus 1e-7, sorted
    ascending: G = Σ_i (2i − n − 1) a_(i) / (n Σ_i a_(i)), i = 1..n. 0 for a
    constant map, (n − 1)/n for a one-hot map.

    Args:
        heatmaps: (N, H, W) attributions.
        abs, normalise: Quantus's preprocessing (`quantus_preprocess`);
            Quantus's defaults, True and True.

    Returns:
        (N,) float64 Gini indices (higher is sparser).
    """
    maps = quantus_preprocess(check_heatmaps(heatmaps, "sparseness"), abs, normalise)
    flat = np.sort(maps.reshape(len(maps), -1) + SPARSENESS_EPSILON, axis=1)
    n = flat.shape[1]
    weights = 2.0 * np.arange(1, n + 1) - n - 1
    return (weights * flat).sum(axis=1) / (n * flat.sum(axis=1))


def complexity(heatmaps, *, abs=True, normalise=True):
    """Entropy of each heatmap's fractional contributions, as Quantus
    `Complexity` (its defaults).

    With a the preprocessed values and p = a / Σ|a|: −Σ p · log(p + 1e-12)
    (natural log). log(H · W) for a constant map, 0 for a one-hot map.

    Args:
        heatmaps: (N, H, W) attributions.
        abs, normalise: Quantus's preprocessing (`quantus_preprocess`);
            Quantus's defaults, True and True. With abs=False a negative
            value gives NaN, as in Quantus.

    Returns:
        (N,) float64 entropies in nats (lower is simpler).
    """
    maps = quantus_preprocess(check_heatmaps(heatmaps, "complexity"), abs, normalise)
    flat = maps.reshape(len(maps), -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = flat / np.abs(flat).sum(axis=1, keepdims=True)
        return -(p * np.log(p + COMPLEXITY_EPSILON)).sum(axis=1)
