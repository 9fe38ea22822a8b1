"""`bin/train`: flags -> `TrainConfig` -> `tfcaf.training.train`."""

import dataclasses
import logging
import sys

from absl import app, flags

from tfcaf.training.config import LOSSES, OPTIMIZERS, SCHEDULES, STRATEGIES, TrainConfig

_D = TrainConfig()
FLAGS = flags.FLAGS
flags.DEFINE_enum("dataset", _D.dataset, ["digits", "cub", "imagenet", "folder"], "Dataset.")
flags.DEFINE_string("data_dir", _D.data_dir, "Dataset root (digits: cache folder).")
flags.DEFINE_string("backbone", _D.backbone, "tiny_resnet, resnet50, googlenet or vgg16_gap.")
flags.DEFINE_string("weights", _D.weights, "Backbone weights: imagenet, none, or a file.")
flags.DEFINE_enum("head", _D.head, ["classifier", "adl", "acol", "embedding"], "Head.")
flags.DEFINE_enum("loss", _D.loss, LOSSES, "softmax for classifiers; triplet or npairs.")
flags.DEFINE_float("margin", _D.margin, "Triplet margin.")
flags.DEFINE_integer("embedding_dim", _D.embedding_dim, "Embedding size.")
flags.DEFINE_boolean("normalize_embedding", None,
                     "L2-normalise the embedding (default: on for triplet, off for npairs).")
flags.DEFINE_float("drop_rate", _D.drop_rate, "ADL drop rate.")
flags.DEFINE_float("gamma", _D.gamma, "ADL threshold (default: 0.9 ResNet, 0.8 VGG).")
flags.DEFINE_float("delta", _D.delta, "ACoL erasing threshold.")
flags.DEFINE_integer("acol_filters", _D.acol_filters, "Width of the ACoL branch convolutions.")
flags.DEFINE_integer("images_per_class", _D.images_per_class, "K of P x K triplet batches.")
flags.DEFINE_integer("train_steps", _D.train_steps, "Optimizer updates (the paper: 5000).")
flags.DEFINE_integer("batch_size", _D.batch_size, "Global batch size.")
flags.DEFINE_enum("optimizer", _D.optimizer, OPTIMIZERS, "Optimizer.")
flags.DEFINE_float("learning_rate", _D.learning_rate, "Initial learning rate.")
flags.DEFINE_enum("lr_schedule", _D.lr_schedule, SCHEDULES, "Schedule over train_steps.")
flags.DEFINE_integer("image_size", _D.image_size, "Input size (default per dataset).")
flags.DEFINE_string("model_dir", _D.model_dir, "Checkpoints, logs and model.keras.")
flags.DEFINE_enum("strategy", _D.strategy, STRATEGIES, "tf.distribute strategy.")
flags.DEFINE_integer("seed", _D.seed, "Seed of initialisation, batches and augmentation.")
flags.DEFINE_integer("log_every", _D.log_every, "Console/TensorBoard logging interval (steps).")
flags.DEFINE_integer("checkpoint_every", _D.checkpoint_every, "Checkpoint interval (steps).")
flags.DEFINE_integer("max_checkpoints", _D.max_checkpoints, "Checkpoints kept.")
flags.DEFINE_boolean("augment", _D.augment, "Random crop and flip.")
flags.DEFINE_integer("val_examples", _D.val_examples, "Validation slice size.")
flags.DEFINE_integer("summary_images", _D.summary_images, "L2-CAF heatmaps in TensorBoard.")
flags.DEFINE_boolean("skip_bad_images", _D.skip_bad_images, "Skip unreadable images.")
flags.DEFINE_integer("logical_cpus", 0, "Split the CPU into this many logical devices "
                     "(to try --strategy=mirrored without GPUs).")


def config_from_flags():
    """The `TrainConfig` the parsed flags describe."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    values = {name: FLAGS[name].value for name in fields}
    if values["weights"] in ("none", ""):
        values["weights"] = None
    return TrainConfig(**values)


def _split_cpu(count):
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * count)


def main(argv):
    del argv
    logging.getLogger("tfcaf").setLevel(logging.INFO)
    if FLAGS.logical_cpus:
        _split_cpu(FLAGS.logical_cpus)
    from tfcaf.training import train
    try:
        result = train(config_from_flags())
    except (ValueError, OSError) as err:
        sys.exit(f"train: error: {err}")
    print("done: " + "  ".join(f"{k} {v}" for k, v in result.items()))
