"""tf.distribute strategies by name, and which worker writes the outputs."""

import os

import tensorflow as tf
from tfcaf.errors import TfcafError
from tfcaf.distribute import STRATEGIES, rendezvous


def split_cpu(count):
    """Splits the CPU into `count` logical devices, so that
    `make_strategy("mirrored")` has `count` replicas without GPUs; before
    TensorFlow touches a device."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * count)


def make_strategy(name, worker_timeout_s=600.0):
    """"default" (one device), "mirrored" (all visible devices of this
    machine) or "multi_worker" (MultiWorkerMirroredStrategy from TF_CONFIG,
    once every task has been reached within `worker_timeout_s` seconds)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or \
            [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        rendezvous.meet_workers(worker_timeout_s)
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise TfcafError(f"--strategy={name}: choose one of {', '.join(STRATEGIES)}")


def task_id(strategy):
    """(task type, index) of this process in the strategy's cluster, or
    (None, 0) for a one-machine strategy (whatever TF_CONFIG holds: a
    variable left in the shell must not make a default run a non-chief
    that saves nothing)."""
    resolver = strategy.cluster_resolver
    if resolver is None or not resolver.task_type:
        return None, 0
    return resolver.task_type, int(resolver.task_id)


def is_chief(strategy):
    """The chief (or worker 0 when the cluster has no chief) writes outputs."""
    kind, index = task_id(strategy)
    if kind is None or kind == "chief":
        return True
    jobs = strategy.cluster_resolver.cluster_spec().jobs
    return kind == "worker" and index == 0 and "chief" not in jobs


def checkpoint_dir(strategy, model_dir):
    """Where this worker saves: `model_dir/checkpoints` for the chief; other
    workers must save too (saving is collective) but to a scratch folder."""
    if is_chief(strategy):
        return os.path.join(model_dir, "checkpoints")
    kind, index = task_id(strategy)
    return os.path.join(model_dir, f".scratch-{kind}-{index}")
