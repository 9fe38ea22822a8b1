"""How much an L2-CAF map depends on its random initial filter.

The L2-CAF objective is not convex: from another initial filter the same
settings can end in another minimum, with another map (docs/method.md §1,
"Restarts and seed stability"). `seed_stability` measures it as the
per-image Pearson correlation of the maps of two runs that differ only in
their seed.
"""

import dataclasses

import numpy as np


def pearson_per_image(a, b):
    """(N,) Pearson correlation of each pair of maps a[i], b[i] ((N, h, w)
    each); 1 for two constant maps, 0 for one constant map."""
    a = np.reshape(a, (len(a), -1)).astype(np.float64)
    b = np.reshape(b, (len(b), -1)).astype(np.float64)
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    norms = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    both_flat = ((a == 0).all(1) & (b == 0).all(1))
    return np.where(both_flat, 1.0, (a * b).sum(1) / np.where(norms > 0, norms, 1.0))


def seed_stability(model, images, solver, seeds=(0, 1), method="l2caf", layer=None,
                   output=None, batch_size=32):
    """Per-image Pearson correlation of the raw maps of two runs of
    `method` whose initial filters have the seeds `seeds` (with restarts,
    their starts [seed, 0], [seed, 1], ...).

    Args:
        model: Keras model, as for `tfcaf.explain`.
        images: (N, H, W, C) images as the model takes them.
        solver: `SolverConfig` of both runs (its own seed is replaced).
        seeds: the two seeds.
        method, layer, output: as for `tfcaf.explain`.
        batch_size: images explained per call.

    Returns:
        ((N,) float64 correlations, the resolved solver settings of the
        runs, `Explanation.solver` of the first).
    """
    from tfcaf.caf import explain
    maps, settings = [], None
    for seed in seeds:
        options = dataclasses.asdict(dataclasses.replace(solver, seed=seed))
        runs = [explain(model, images[i:i + batch_size], method=method, layer=layer,
                        output=output, **options)
                for i in range(0, len(images), batch_size)]
        settings = settings or runs[0].solver
        maps.append(np.concatenate([run.maps for run in runs]))
    return pearson_per_image(*maps), settings
