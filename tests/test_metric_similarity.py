"""Every metric that scores the model takes the methods' target object:
`tfcaf.Similarity` scores the cosine similarity to given reference
embeddings (or to the outputs of reference images). On a retrieval net,
the references being the images' own embeddings is exactly `embedding=True`;
other references are checked against a hand computation."""

import numpy as np
import pytest

from golden_files import golden_net, keras_net
from tfcaf import Similarity
from tfcaf.errors import TfcafError
from tfcaf.metrics import correlation, fidelity
from tfcaf.metrics import faithfulness as fm
from tfcaf.metrics import remove_and_debias as road

NET = keras_net("embedding")
IMAGES = golden_net.sample_images(seed=1)
REFERENCE_IMAGES = golden_net.sample_images(seed=2)
HEATMAPS = np.random.default_rng(5).random(IMAGES.shape[:3]).astype(np.float32)


def predict(batch):
    return NET(batch)


def _runs(targets, embedding):
    """Each scoring metric's per-image result for `targets`."""
    common = dict(embedding=embedding, batch_size=3)
    curves = fm.deletion_insertion(predict, IMAGES, HEATMAPS, targets, step=128, **common)
    return {
        "deletion": curves["deletion_curve"], "insertion": curves["insertion_curve"],
        "drop": fm.average_drop_increase(predict, IMAGES, HEATMAPS, targets, **common)["drop"],
        "road": road.road(predict, IMAGES, HEATMAPS, targets, percentiles=(30, 70),
                          **common)["road"],
        "mufidelity": fidelity.mufidelity(predict, IMAGES, HEATMAPS, targets, nb_samples=8,
                                          **common)["mufidelity"],
        "correlation": correlation.faithfulness_correlation(
            predict, IMAGES, HEATMAPS, targets, nb_runs=8, subset_size=64,
            **common)["score_drops"]}


def test_own_embeddings_as_references_equal_embedding_true():
    own = _runs(Similarity(embeddings=NET(IMAGES).numpy()), embedding=False)
    for name, value in _runs(None, embedding=True).items():
        np.testing.assert_array_equal(own[name], value, err_msg=name)


def test_reference_embeddings_score_the_cosine_to_them():
    references = NET(REFERENCE_IMAGES).numpy()
    result = fm.deletion_insertion(predict, IMAGES, HEATMAPS, Similarity(embeddings=references),
                                   step=256)
    # By hand: the deletion curve's steps remove the top 0, 256, ..., 1024
    # pixels; the score is the cosine of each copy's embedding to the reference.
    order = np.argsort(-HEATMAPS.reshape(len(IMAGES), -1), axis=1, kind="stable")
    for i, image in enumerate(IMAGES):
        for s, count in enumerate(range(0, 1025, 256)):
            copy = image.reshape(-1, 3).copy()
            copy[order[i, :count]] = 0.0
            out = NET(copy.reshape((1,) + image.shape)).numpy()[0]
            cosine = out @ references[i] / np.linalg.norm(out) / np.linalg.norm(references[i])
            assert result["deletion_curve"][i, s] == pytest.approx(cosine, abs=1e-6)
    # Reference images: their outputs are the references.
    by_images = fm.deletion_insertion(predict, IMAGES, HEATMAPS,
                                      Similarity(images=REFERENCE_IMAGES), step=256)
    np.testing.assert_array_equal(by_images["deletion_curve"], result["deletion_curve"])
    # One reference for all images broadcasts.
    one = fm.average_drop_increase(predict, IMAGES, HEATMAPS,
                                   Similarity(embeddings=references[0]))["drop"]
    every = fm.average_drop_increase(predict, IMAGES, HEATMAPS,
                                     Similarity(embeddings=np.tile(references[:1], (4, 1))))
    np.testing.assert_array_equal(one, every["drop"])


def test_wrong_reference_count_is_refused():
    with pytest.raises(TfcafError, match="2 references for 4 images"):
        fm.deletion_insertion(predict, IMAGES, HEATMAPS,
                              Similarity(embeddings=np.ones((2, 8), np.float32)))


def test_classifier_targets_are_checked_and_a_cosine_at_or_below_zero_has_no_drop():
    classifier = keras_net("classifier")
    with pytest.raises(TfcafError, match=r"targets must be \(4,\) class ids in \[0, 5\)"):
        fm.deletion_insertion(lambda x: classifier(x), IMAGES, HEATMAPS, None)
    with pytest.raises(TfcafError, match=r"got \[0, 1, 2, 7\]"):
        fm.average_drop_increase(lambda x: classifier(x), IMAGES, HEATMAPS, [0, 1, 2, 7])
    # References opposite to the images' embeddings: every cosine Y < 0.
    opposite = Similarity(embeddings=-NET(IMAGES).numpy())
    result = fm.average_drop_increase(predict, IMAGES, HEATMAPS, opposite)
    assert np.isnan(result["drop"]).all() and np.isnan(result["average_drop"])


@pytest.mark.parametrize("call, message", [
    (lambda: fm.deletion_insertion(predict, IMAGES, HEATMAPS[:, :8], embedding=True),
     r"deletion_insertion: heatmaps \(4, 8, 32\) must be \(4, 32, 32\)"),
    (lambda: fm.deletion_insertion(predict, IMAGES, HEATMAPS, embedding=True, step=0),
     "deletion_insertion: step must be an integer >= 1"),
    (lambda: fm.average_drop_increase(predict, IMAGES, HEATMAPS, embedding=True, batch_size=0),
     "average_drop_increase: batch_size must be an integer >= 1"),
    (lambda: fidelity.mufidelity(predict, IMAGES[..., :2], HEATMAPS, embedding=True),
     r"mufidelity: images must be \(N, H, W, 3\)")])
def test_bad_arguments_are_named(call, message):
    with pytest.raises(TfcafError, match=message):
        call()
