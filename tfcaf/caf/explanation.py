"""`Explanation`: what `explain` and `Explainer.explain` return."""

from dataclasses import dataclass

import numpy as np


@dataclass
class Explanation:
    """Heatmaps for a batch of B images (T targets each when asked for).

    Attributes:
        heatmaps: (B, H, W) — or (B, T, H, W) when targets were given as a
            (B, T) array — float32 in [0, 1] at image size.
        maps: the raw maps at feature-map size, (B, h, w) or (B, T, h, w).
        targets: (B,) or (B, T) class ids explained; None when the method
            took none (class-oblivious L2-CAF, any method on an embedding)
            or explained a `Similarity`.
        layer: name of the layer that was split.
        method: one of `METHODS`.
        iterations, losses: iterative methods only: updates and last loss
            per problem, shaped like `targets` (or (B,)).
        snapshots: iterative methods with `snapshot_every`: (B[, T], S, h, w)
            maps.
        snapshot_losses: (B[, T], S) loss of each snapshot, with `snapshots`.
        solver: iterative methods: the settings every problem was solved
            with, "auto" resolved (`SolverConfig.describe()`); else None.
    """
    heatmaps: np.ndarray
    maps: np.ndarray
    targets: np.ndarray | None
    layer: str
    method: str
    iterations: np.ndarray | None = None
    losses: np.ndarray | None = None
    snapshots: np.ndarray | None = None
    snapshot_losses: np.ndarray | None = None
    solver: dict | None = None
