"""tfcaf: L2-CAF visualization (Taha et al., ECCV 2020) for TensorFlow/Keras.

`tfcaf.explain(model, images, method="l2caf")` returns heatmaps of where a
classification or retrieval CNN looks; `tfcaf.applications.load_model(path)`
loads a saved tfcaf model (or a `keras.applications` classifier by name).
Subpackages: `caf` (the engine), `applications`, `models`, `losses`, `data`,
`training`, `metrics`, `evaluation`, `export`, `cli`.

`import tfcaf` imports no TensorFlow: `explain`'s engine and each
subpackage are imported on first use (`tfcaf.lazy`).
"""

from tfcaf import lazy

__version__ = "0.3.0"

_SUBPACKAGES = ("applications", "caf", "cli", "data", "evaluation", "export", "losses",
                "metrics", "models", "training")

# `tfcaf.Similarity(...)`: a target of `explain` (tfcaf.caf.targets);
# `tfcaf.read_maps(folder)`: the maps bin/visualize wrote.
__getattr__, __dir__ = lazy.attach(__name__, {"Similarity": "caf.targets",
                                              "read_maps": "heatmap_store"},
                                   submodules=_SUBPACKAGES)


def explain(model, images, method="l2caf", layer=None, targets=None, output=None,
            **options):
    """Where does `model` look in `images`? `tfcaf.caf.explain`, also taking
    paths where a user would give them.

    Args:
        model: a Keras model, or a `.keras` path or `keras.applications`
            name, loaded with `tfcaf.applications.load_model` (at every
            call: load it once for many calls).
        images: a (B, H, W, C) batch as the model expects it, or an image
            file path or a list of them, read as RGB pixels in [0, 255] and
            resized to the model's input size (224 where it is open);
            `tfcaf.applications.as_images`.
        method, layer, targets, output, **options: see `tfcaf.caf.explain`.

    Returns:
        An `Explanation`; `.heatmaps` is (B, H, W) in [0, 1].

    Raises:
        TfcafError: as `tfcaf.caf.explain`, and for a model that is no
            Keras model, path or name, or an image file that cannot be read.
    """
    from tfcaf import applications
    from tfcaf.caf import explainer
    from tfcaf.caf.split import check_model
    model = applications.as_model(model)
    check_model(model)
    return explainer.explain(model, applications.as_images(images, model), method=method,
                             layer=layer, targets=targets, output=output, **options)
