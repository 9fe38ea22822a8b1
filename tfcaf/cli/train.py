"""`bin/train`: flags -> `TrainConfig` -> `tfcaf.training.train`."""

import logging

from absl import flags

from tfcaf.cli.errors import USER_ERRORS, exit_with

from tfcaf.cli import train_flags

FLAGS = flags.FLAGS
train_flags.define_flags(FLAGS)


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
        result = train(train_flags.config_from_flags(FLAGS))
    except USER_ERRORS as err:
        exit_with("train", err)
    print("done: " + "  ".join(f"{k} {v}" for k, v in result.items()))
