"""Model-randomisation sanity checks (Adebayo et al. 2018; docs/method.md §6).

Weights are re-initialised from the output downward, one layer more at each
stage (cascading) or one layer at a time (independent), and each method's
maps are compared with the trained model's maps: Spearman rank correlation
of the absolute maps and SSIM. A faithful method's similarity drops as the
weights it explains are randomised.
"""

import tensorflow as tf
from keras import initializers

from tfcaf import graph
from tfcaf.metrics.randomization import map_similarity


def weighted_layers(model):
    """Layers holding trainable weights, output side first (nested models
    expanded)."""
    seen, layers = set(), []
    for layer, _ in reversed(graph.leaf_layers(model)):
        if layer.trainable_weights and id(layer) not in seen:
            seen.add(id(layer))
            layers.append(layer)
    return layers


def reinitialize(layer, seed):
    """Draws every variable of `layer` anew from its initializer (kernels
    without one: Glorot uniform), seeded."""
    for index, variable in enumerate(layer.weights):
        name = variable.path.split("/")[-1]
        initializer = getattr(layer, f"{name}_initializer", None)
        if initializer is None:
            initializer = initializers.GlorotUniform() if len(variable.shape) > 1 \
                else initializers.Zeros()
        config = initializer.get_config()
        if "seed" in config:
            config["seed"] = seed * 1000 + index
        fresh = type(initializer).from_config(config)
        variable.assign(tf.cast(fresh(variable.shape, dtype=variable.dtype), variable.dtype))


def randomization_check(adapter, images, labels, methods, stages=6, cascading=True, seed=0):
    """Similarity of each method's maps to the trained model's maps.

    Args:
        adapter: a `KerasAdapter` (its model is randomised in place and
            restored afterwards).
        images, labels: (N, H, W, 3) pixels and (N,) classes.
        methods: method names.
        stages: how many weighted layers, from the output down, to randomise.
        cascading: True: stage k randomises layers 1..k; False: only layer k.

    Returns:
        list of rows {"layer": name, method: {"spearman": r, "ssim": s}}:
        Spearman of the absolute raw maps, SSIM of the image-sized heatmaps.
    """
    model = adapter.model
    trained_weights = model.get_weights()
    reference = {m: adapter.maps(images, labels, m) for m in methods}
    rows = []
    try:
        for stage, layer in enumerate(weighted_layers(model)[:stages]):
            if not cascading:
                model.set_weights(trained_weights)
            reinitialize(layer, seed + stage)
            row = {"layer": layer.name}
            for method in methods:
                raw, heat = adapter.maps(images, labels, method)
                row[method] = map_similarity(*reference[method], raw, heat)
            rows.append(row)
    finally:
        model.set_weights(trained_weights)
    return rows
