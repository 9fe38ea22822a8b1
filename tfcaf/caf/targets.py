"""What a method explains, shared by every method (docs/method.md §1, §2):

- `CLASSES`: given class ids of a classifier's logits;
- `OUTPUT`: the output as a whole (class-oblivious L2-CAF; the embedding
  of a retrieval net, scored e · stop_gradient(e) by the gradient methods);
- `SIMILARITY`: the cosine similarity of the output to a reference
  embedding, given or computed from a reference image ("which parts of
  this retrieved image make it match the query"): `Similarity`.

`Objective` is the graph-side form: one row per problem, crossing
`tf.function` boundaries as a NamedTuple.
"""

import dataclasses
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tfcaf.errors import TfcafError
from tfcaf.names import TARGET_KINDS

CLASSES, OUTPUT, SIMILARITY = TARGET_KINDS


@dataclasses.dataclass(frozen=True)
class Similarity:
    """Target: the cosine similarity of each image's output to a reference.

    Give exactly one of:

    Args:
        embeddings: reference embeddings, (D,) for every image or (B, D)
            one per image (any scale: only their direction counts).
        images: reference images as the model takes them, (H, W, C) for
            every image or (B, H, W, C) one per image; the model's outputs
            for them are the references.
    """
    embeddings: object = None
    images: object = None

    def __post_init__(self):
        if (self.embeddings is None) == (self.images is None):
            raise TfcafError("Similarity: give exactly one of embeddings= (reference "
                             "embeddings) or images= (reference images)")


class Objective(NamedTuple):
    """What P problems explain, one row each.

    Attributes:
        kind: `CLASSES`, `OUTPUT` or `SIMILARITY` (a Python str: a graph
            is traced per kind).
        classes: (P,) int32 class ids for `CLASSES`, else None.
        references: (P, D) float32 unit-norm reference outputs for
            `SIMILARITY`, else None.
    """
    kind: str
    classes: tf.Tensor | None = None
    references: tf.Tensor | None = None

    def rows(self, rows):
        """The objective of problems `rows` ((R,) int32; None: all)."""
        if rows is None:
            return self
        take = lambda t: None if t is None else tf.gather(t, rows)  # noqa: E731
        return Objective(self.kind, take(self.classes), take(self.references))

    def repeated(self, times):
        """Each problem's row `times` times in a row (restarts)."""
        again = lambda t: None if t is None else tf.repeat(t, times, axis=0)  # noqa: E731
        return Objective(self.kind, again(self.classes), again(self.references))

    def score(self, outputs):
        """(P,) the score the gradient methods differentiate, from (P, K)
        outputs: the target logit, e · stop_gradient(e), or cos(e, r)."""
        outputs = tf.cast(outputs, tf.float32)
        if self.kind == CLASSES:
            return tf.gather(outputs, self.classes, batch_dims=1)
        if self.kind == OUTPUT:
            return tf.reduce_sum(outputs * tf.stop_gradient(outputs), -1)
        return cosine(outputs, self.references)

    def l2caf_loss(self, unfiltered, filtered):
        """(P,) L2-CAF's objective for (P, K) filtered outputs FT:
        class-oblivious mean_k (NT_k − FT_k)² (`unfiltered` NT), class-
        specific Σ_k s_k FT_k (s_t = −1, else +1), or −cos(FT, r)."""
        if self.kind == OUTPUT:
            return tf.reduce_mean(tf.square(unfiltered - filtered), -1)
        if self.kind == CLASSES:
            signs = 1.0 - 2.0 * tf.one_hot(self.classes, filtered.shape[-1])
            return tf.reduce_sum(signs * filtered, -1)
        return -cosine(filtered, self.references)


def cosine(outputs, references):
    """(P,) cosine similarity of (P, D) outputs to (P, D) unit references
    (0 for an all-zero output)."""
    return tf.reduce_sum(tf.math.l2_normalize(outputs, -1) * references, -1)


def as_objective(targets):
    """`targets` as an `Objective`: None -> `OUTPUT`, (P,) class ids ->
    `CLASSES`, an `Objective` as it is."""
    if targets is None:
        return Objective(OUTPUT)
    if isinstance(targets, Objective):
        return targets
    return Objective(CLASSES, classes=tf.cast(targets, tf.int32))


def similarity_references(target, batch, output_dim, embed):
    """(B, D) float32 unit-norm references of a `Similarity` for B images.

    Args:
        target: the `Similarity`.
        batch: B.
        output_dim: D of the model's output.
        embed: function (N, H, W, C) images -> (N, D) outputs.

    Raises:
        TfcafError: the references are not one or B vectors of size D, or
            are zero or non-finite.
    """
    if target.images is not None:
        images = np.asarray(target.images, np.float32)
        references = np.asarray(embed(images if images.ndim == 4 else images[None]))
        given = "images"
    else:
        references = np.asarray(target.embeddings, np.float32)
        given = "embeddings"
    references = references[None] if references.ndim == 1 else references
    if references.ndim != 2 or references.shape[0] not in (1, batch) or \
            references.shape[1] != output_dim:
        raise TfcafError(f"Similarity({given}=...): references of shape "
                         f"{tuple(references.shape)}; need (D,) or (B, D) with B={batch}, "
                         f"D={output_dim} (the model's output size)")
    norms = np.linalg.norm(references, axis=1)
    if not np.isfinite(references).all() or (norms == 0).any():
        raise TfcafError(f"Similarity({given}=...): a reference is zero or not finite")
    return np.broadcast_to(references / norms[:, None], (batch, output_dim)).astype(np.float32)


def class_id_matrix(targets, outputs, batch, num_classes):
    """Class-id `targets` (an int, (B,) or (B, T); None: each image's
    top-1 class of the (B, K) `outputs`) as a (B, T) int32 array, and
    whether the caller gave one per image; `TfcafError` for floats, bools,
    a wrong shape or ids outside [0, `num_classes`)."""
    if targets is None:
        return np.argmax(outputs.numpy(), axis=-1)[:, None].astype(np.int32), True
    array = np.asarray(targets)
    # Checked first: int() would turn a float 0.5 into class 0.
    if not np.issubdtype(array.dtype, np.integer):
        raise TfcafError(f"targets must be integer class ids; got {array.tolist()!r}")
    if array.ndim == 0:
        array = np.full((batch, 1), int(array))
        squeeze = True
    elif array.ndim == 1:
        array, squeeze = array[:, None], True
    else:
        squeeze = False
    if array.ndim != 2 or array.shape[0] != batch or array.shape[1] == 0:
        raise TfcafError(
            f"targets must be an int, (B,) or (B, T) with B={batch}, T >= 1; got shape "
            f"{np.asarray(targets).shape}")
    outside = (array < 0) | (array >= num_classes)
    if outside.any():
        bad = ", ".join(str(t) for t in sorted(set(array[outside].tolist())))
        raise TfcafError(f"targets must be class ids in [0, {num_classes}); got {bad}")
    return array.astype(np.int32), squeeze
