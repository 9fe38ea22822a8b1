"""bin/train's flag definitions, kept apart from `tfcaf.cli.train` so that
other programs (the demo, tests) can parse experiment flagfiles into a
`TrainConfig` without defining global flags."""

import dataclasses
import os

from absl import flags

from tfcaf.cli import choices
from tfcaf.distribute import STRATEGIES
from tfcaf.training.config import LOSSES, OPTIMIZERS, SCHEDULES, TrainConfig

_D = TrainConfig()


def define_flags(flag_values):
    """Defines bin/train's flags on `flag_values` (a fresh `FlagValues` lets
    other programs parse experiment flagfiles).

    The flags carry no bounds of their own: the ranges are
    `tfcaf.training.validate`'s, one rule for the flags (checked by
    `tfcaf.cli.train.check_flags` before TensorFlow loads) and the Python API.
    """
    fv = dict(flag_values=flag_values)
    flags.DEFINE_enum("dataset", _D.dataset, choices.DATASETS, "Dataset.", **fv)
    flags.DEFINE_string("data_dir", _D.data_dir, "Dataset root (digits: cache folder).", **fv)
    flags.DEFINE_string("backbone", _D.backbone,
                        "tiny_resnet, resnet50, googlenet, vgg16_gap or vit_tiny (keras-hub).",
                        **fv)
    flags.DEFINE_string("weights", _D.weights, "Backbone weights: imagenet, none, or a file.", **fv)
    flags.DEFINE_enum("head", _D.head, ["classifier", "adl", "acol", "embedding"], "Head.", **fv)
    flags.DEFINE_enum("loss", _D.loss, LOSSES, "softmax for classifiers; triplet or npairs.", **fv)
    flags.DEFINE_float("margin", _D.margin, "Triplet margin, > 0.", **fv)
    flags.DEFINE_integer("embedding_dim", _D.embedding_dim, "Embedding size.", **fv)
    flags.DEFINE_boolean("normalize_embedding", None,
                         "L2-normalise the embedding (default: on for triplet, off for "
                         "npairs).", **fv)
    flags.DEFINE_float("drop_rate", _D.drop_rate, "ADL drop rate, in [0, 1].", **fv)
    flags.DEFINE_float("gamma", _D.gamma, "ADL threshold, in [0, 1] (default: 0.9 ResNet, "
                       "0.8 VGG).", **fv)
    flags.DEFINE_float("delta", _D.delta, "ACoL erasing threshold, in [0, 1].", **fv)
    flags.DEFINE_integer("acol_filters", _D.acol_filters,
                         "Width of the ACoL branch convolutions.", **fv)
    flags.DEFINE_integer("images_per_class", _D.images_per_class,
                         "K of P x K triplet batches.", **fv)
    flags.DEFINE_integer("train_steps", _D.train_steps,
                         "Optimizer updates (the paper: 5000).", **fv)
    flags.DEFINE_integer("batch_size", _D.batch_size, "Global batch size.", **fv)
    flags.DEFINE_enum("optimizer", _D.optimizer, OPTIMIZERS, "Optimizer.", **fv)
    flags.DEFINE_float("learning_rate", _D.learning_rate,
                       "Initial learning rate: in (0, 1] for adam and rmsprop, (0, 10] for "
                       "sgd and momentum.", **fv)
    flags.DEFINE_enum("lr_schedule", _D.lr_schedule, SCHEDULES, "Schedule over train_steps.", **fv)
    flags.DEFINE_integer("image_size", _D.image_size,
                         "Input size in pixels (default per dataset).", **fv)
    flags.DEFINE_string("model_dir", _D.model_dir, "Checkpoints, logs and model.keras (a folder; "
                        "one run at a time).", **fv)
    flags.DEFINE_enum("strategy", _D.strategy, STRATEGIES, "tf.distribute strategy.", **fv)
    flags.DEFINE_integer("seed", _D.seed,
                         "Seed of initialisation, batches and augmentation.", **fv)
    flags.DEFINE_integer("log_every", _D.log_every,
                         "Console/TensorBoard logging interval (steps).", **fv)
    flags.DEFINE_integer("checkpoint_every", _D.checkpoint_every,
                         "Checkpoint interval (steps).", **fv)
    flags.DEFINE_integer("max_checkpoints", _D.max_checkpoints, "Checkpoints kept.", **fv)
    flags.DEFINE_boolean("augment", _D.augment, "Random crop and flip.", **fv)
    flags.DEFINE_integer("val_examples", _D.val_examples, "Validation slice size.", **fv)
    flags.DEFINE_integer("summary_images", _D.summary_images,
                         "L2-CAF heatmaps in TensorBoard.", **fv)
    flags.DEFINE_boolean("skip_bad_images", _D.skip_bad_images, "Skip unreadable images.", **fv)
    flags.DEFINE_float("worker_timeout_s", _D.worker_timeout_s,
                       "--strategy=multi_worker: seconds to wait for the other TF_CONFIG "
                       "tasks before giving up, naming those not reached.", **fv)
    flags.DEFINE_integer("logical_cpus", 0, "Split the CPU into this many logical devices "
                         "(to try --strategy=mirrored without GPUs).", lower_bound=0, **fv)
    flags.register_validator(
        "model_dir", lambda path: not path or not os.path.isfile(path),
        "names a file; give a folder (it is created if missing)", **fv)


# bin/train's --help, in this order.
FLAG_GROUPS = (
    ("Data", ("dataset", "data_dir", "image_size", "augment", "skip_bad_images",
              "val_examples")),
    ("Model", ("backbone", "weights", "head", "embedding_dim", "normalize_embedding",
               "drop_rate", "gamma", "delta", "acol_filters")),
    ("Loss and optimisation", ("loss", "margin", "images_per_class", "train_steps",
                               "batch_size", "optimizer", "learning_rate", "lr_schedule",
                               "seed")),
    ("Run", ("model_dir", "strategy", "worker_timeout_s", "logical_cpus", "log_every",
             "checkpoint_every", "max_checkpoints", "summary_images")),
)


def config_from_flags(flag_values):
    """The `TrainConfig` the parsed flags describe."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    values = {name: flag_values[name].value for name in fields}
    if values["weights"] in ("none", ""):
        values["weights"] = None
    return TrainConfig(**values)


def parse_flagfile(path):
    """The `TrainConfig` of an experiment flagfile (global flags untouched)."""
    flag_values = flags.FlagValues()
    define_flags(flag_values)
    flag_values(["train", f"--flagfile={path}"])
    return config_from_flags(flag_values)
