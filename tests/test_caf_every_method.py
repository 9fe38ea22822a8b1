"""Every method of the registry on the two digits architectures (the ADL
classifier and the triplet net, tiny and untrained), with each target it
takes: a class, the embedding, a reference image. The equality of each
method to its reference library is in tests/test_caf_*_golden.py; this
checks that every combination the registry declares runs, has the right
shape, is finite, explains per image (a batch gives each image's map
alone) and that a reference image is its embedding."""

import numpy as np
import pytest

import tfcaf
from tfcaf.caf import METHODS, Explainer, Similarity
from tfcaf.models import build_model

SIZE = 32
# Fewer passes than the defaults, to keep the suite short.
CHEAP = {"scorecam": {"batch_size": 64}, "integrated_gradients": {"steps": 4},
         "smoothgrad": {"nb_samples": 3}, "occlusion": {"patch_size": 8, "patch_stride": 8},
         "rise": {"nb_samples": 40}, "l2caf": {"max_iterations": 20},
         "l2caf_specific": {"max_iterations": 20}}


def _network(kind):
    options = {"filters": (4, 8, 8)}
    if kind == "adl":
        return build_model("tiny_resnet", "adl", num_classes=4, image_size=SIZE, seed=0,
                           backbone_options=options)
    return build_model("tiny_resnet", "embedding", embedding_dim=6, image_size=SIZE, seed=0,
                       backbone_options=options)


NETWORKS = {kind: _network(kind) for kind in ("adl", "triplet")}
IMAGES = np.random.default_rng(0).uniform(0, 255, (3, SIZE, SIZE, 3)).astype(np.float32)
REFERENCE = np.random.default_rng(1).uniform(0, 255, (SIZE, SIZE, 3)).astype(np.float32)


def _cases():
    """(network, method, target) for every target each method takes there:
    class ids on the ADL classifier (its logits as a whole for the methods
    that take no class); the embedding itself and a reference image on the
    triplet net."""
    for name, method in METHODS.items():
        yield "adl", name, "class" if "classes" in method.targets else "embedding"
        if "output" in method.targets:
            yield "triplet", name, "embedding"
        if "similarity" in method.targets:
            yield "triplet", name, "reference image"


CLASSES = np.array([1, 3, 0], np.int32)


def _explain(network, method, target, images, rows=slice(None)):
    """`method` explaining `target` for IMAGES[rows] (their classes
    CLASSES[rows])."""
    targets = {"class": CLASSES[rows], "embedding": None,
               "reference image": Similarity(images=REFERENCE)}[target]
    return tfcaf.explain(NETWORKS[network], images, method=method, targets=targets,
                         **CHEAP.get(method, {}))


def test_cases_cover_every_method_on_both_networks():
    cases = list(_cases())
    assert [m for n, m, _ in cases if n == "adl"] == list(METHODS)
    assert {m for n, m, _ in cases if n == "triplet"} == set(METHODS) - {"cam"}
    assert len(cases) == 16 + 10 + 13


@pytest.mark.parametrize("network,method,target", list(_cases()))
def test_every_method_and_target_runs_per_image(network, method, target):
    result = _explain(network, method, target, IMAGES)
    explainer = Explainer(NETWORKS[network])
    feature_size = explainer.forward(IMAGES[:1])[0].shape[1:3]
    assert result.maps.shape[1:] in (tuple(feature_size), (SIZE, SIZE))
    assert result.heatmaps.shape == (3, SIZE, SIZE)
    assert np.isfinite(result.maps).all() and np.isfinite(result.heatmaps).all()
    assert result.heatmaps.min() >= 0.0 and result.heatmaps.max() <= 1.0
    if target == "class":
        np.testing.assert_array_equal(result.targets, CLASSES)
    # Each image's map is its own: the same as explaining it alone.
    alone = _explain(network, method, target, IMAGES[1:2], slice(1, 2))
    scale = max(np.abs(result.maps[1]).max(), 1e-30)
    # Occlusion's maps are differences of two scores near 1 (cosines): a
    # batch's rounding moves them by float32 steps of 1, not of the map.
    steps = 4 * np.finfo(np.float32).eps if method == "occlusion" else 0.0
    np.testing.assert_allclose(alone.maps[0], result.maps[1], rtol=1e-4,
                               atol=1e-5 * scale + steps)


@pytest.mark.parametrize("method", [m for m, spec in METHODS.items()
                                    if "similarity" in spec.targets])
def test_a_reference_image_explains_as_its_embedding(method):
    model = NETWORKS["triplet"]
    by_image = _explain("triplet", method, "reference image", IMAGES[:2])
    # The reference's embedding from the explainer's own forward pass: a
    # plain model call rounds it differently by a float32 step, which
    # L2-CAF's iterations amplify to 2e-4 of a map value.
    embedding = Explainer(model).forward(REFERENCE[None])[1][0]
    by_embedding = tfcaf.explain(model, IMAGES[:2], method=method,
                                 targets=Similarity(embeddings=embedding),
                                 **CHEAP.get(method, {}))
    np.testing.assert_array_equal(by_image.maps, by_embedding.maps)


def test_input_space_methods_with_targets_given_still_refuse_a_broken_model():
    # They skip explain's own forward pass (the method runs the model
    # itself); a NaN weight must still be named, not returned as a map.
    import keras
    from tfcaf.caf.finite import NonFiniteError
    model = keras.models.clone_model(NETWORKS["adl"])
    model.set_weights([np.full_like(w, np.nan) if i == 0 else w
                       for i, w in enumerate(NETWORKS["adl"].get_weights())])
    with pytest.raises(NonFiniteError, match=r"outputs are NaN or infinite for image\(s\) "
                                             r"\[0, 1, 2\]"):
        tfcaf.explain(model, IMAGES, method="saliency", targets=CLASSES)
