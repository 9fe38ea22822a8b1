"""Training batches as a pure function of the step number.

Batch s is drawn from seeded, stateless streams indexed by s (and each
image's augmentation by its position in the run), so a resumed run sees
exactly the batches the interrupted one would have seen: the data position
needs no checkpointing.
"""

import tensorflow as tf

from tfcaf.data import samplers
from tfcaf.errors import TfcafError


def index_batches(dataset, config):
    """tf.data of int64 index batches (B,) for the whole run, from step 0.

    Triplet: P x K class-major batches; N-pair: (anchor, positive) pairs;
    softmax: seeded reshuffled epochs.

    Raises:
        TfcafError: the dataset has too few classes or images per class for
            the batch (names the flags).
    """
    labels = dataset.labels
    try:
        if config.loss == "triplet":
            return samplers.pk_batches(labels, config.batch_size // config.images_per_class,
                                       config.images_per_class, seed=config.seed)
        if config.loss == "npairs":
            return samplers.npair_batches(labels, config.batch_size, seed=config.seed)
    except ValueError as err:
        raise TfcafError(f"--loss={config.loss} --batch_size={config.batch_size} on "
                         f"{dataset.name}/{dataset.split}: {err}") from None
    if len(dataset) < config.batch_size:
        raise TfcafError(f"--batch_size={config.batch_size} exceeds the {len(dataset)} "
                         f"examples of {dataset.name}/{dataset.split}")
    return (tf.data.Dataset.range(len(dataset))
            .shuffle(len(dataset), seed=config.seed, reshuffle_each_iteration=True)
            .repeat().batch(config.batch_size, drop_remainder=True))


def training_batches(dataset, config, start_step):
    """(images (B, H, W, 3), labels (B,)) for steps start_step .. train_steps-1,
    from `ImageDataset.from_indices` (image i of step s is augmented with
    the seed (config.seed, s * B + i))."""
    indices = index_batches(dataset, config).skip(start_step).take(
        config.train_steps - start_step)
    examples = dataset.from_indices(indices, seed=config.seed, augment=config.augment,
                                    first_position=start_step * config.batch_size)
    return examples.map(lambda images, labels, boxes: (images, labels))
