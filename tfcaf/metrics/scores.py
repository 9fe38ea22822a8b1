"""What the perturbation metrics score (docs/method.md §7): the softmax
probability of the explained class (classifiers), the cosine similarity to
each image's own embedding (retrieval nets), or the cosine similarity to
reference embeddings given as a `tfcaf.Similarity`, the methods' target
object. Every metric that runs the model scores its perturbed copies with
`target_scores` against what `scoring` returns for the unperturbed images."""

import numpy as np
import tensorflow as tf

from tfcaf.caf.targets import Similarity
from tfcaf.errors import TfcafError


def target_scores(outputs, targets, references):
    """(B,) softmax probability of `targets` (classifiers, references None)
    or cosine similarity to `references` (B, D) (retrieval nets)."""
    outputs = tf.cast(outputs, tf.float32)
    if references is None:
        probabilities = tf.nn.softmax(outputs, axis=-1)
        return tf.gather(probabilities, targets, batch_dims=1)
    return tf.reduce_sum(tf.math.l2_normalize(outputs, -1) *
                         tf.math.l2_normalize(references, -1), -1)


def batched_outputs(predict, images, batch_size):
    """`predict` of (N, ...) `images`, `batch_size` at a time, concatenated."""
    return np.concatenate([np.asarray(predict(images[i:i + batch_size]))
                           for i in range(0, len(images), batch_size)])


def similarity_references(predict, similarity, count, batch_size=64):
    """(count, D) reference embeddings of a `tfcaf.Similarity` target: its
    embeddings, or the outputs of its reference images, one per image or
    one for all."""
    if similarity.embeddings is not None:
        references = np.asarray(similarity.embeddings, np.float32)
    else:
        pictures = np.asarray(similarity.images, np.float32)
        references = batched_outputs(predict, pictures.reshape((-1,) + pictures.shape[-3:]),
                              batch_size)
    references = references.reshape(-1, references.shape[-1])
    if len(references) not in (1, count):
        raise TfcafError(f"Similarity: {len(references)} references for {count} images; "
                         "give one for all or one per image")
    return np.broadcast_to(references, (count, references.shape[-1]))


def scoring(predict, images, targets=None, embedding=False, batch_size=64):
    """What a perturbation metric scores, from the unperturbed images.

    Args:
        targets: (N,) class ids (classifiers: their softmax probability),
            or a `tfcaf.Similarity`, as the methods take it: the cosine
            similarity to its reference embeddings (any model).
        embedding: with no Similarity, score the cosine similarity to each
            image's own embedding (retrieval nets).

    Returns:
        (scores (N,) of the images, class ids (N,) int32 tensor or None,
        references (N, D) or None), the last two for `target_scores`.
    """
    outputs = batched_outputs(predict, images, batch_size)
    if isinstance(targets, Similarity):
        classes, references = None, similarity_references(predict, targets, len(images),
                                                          batch_size)
    elif embedding:
        classes, references = None, outputs
    else:
        ids = np.asarray(targets) if targets is not None else None
        if ids is None or ids.shape != (len(images),) or not len(ids) or \
                ids.min() < 0 or ids.max() >= outputs.shape[-1]:
            raise TfcafError(
                f"targets must be ({len(images)},) class ids in [0, {outputs.shape[-1]}) for "
                f"a classifier (or embedding=True, or a tfcaf.Similarity); got "
                f"{None if ids is None else ids.tolist() if ids.size <= 8 else ids.shape}")
        classes, references = tf.constant(ids, tf.int32), None
    return target_scores(outputs, classes, references).numpy(), classes, references
