"""--strategy, --worker_timeout_s and --logical_cpus of the binaries that
explain at dataset scale (evaluate, visualize), as bin/train has them, and
the `tf.distribute` strategy they describe. Loads no TensorFlow until
`strategy()` is called."""

from absl import flags

from tfcaf.distribute import STRATEGIES

FLAGS = flags.FLAGS
NAMES = ("strategy", "worker_timeout_s", "logical_cpus")


def define(flag_values=FLAGS):
    """Defines the flags; returns their names in `--help` order."""
    flags.DEFINE_enum("strategy", "default", STRATEGIES,
                      "tf.distribute strategy: default (one device), mirrored (every GPU of "
                      "this machine, or --logical_cpus) or multi_worker (the hosts of "
                      "TF_CONFIG; --out_dir on a file system they share). Each replica "
                      "explains whole batches: the numbers do not depend on it.",
                      flag_values=flag_values)
    flags.DEFINE_float("worker_timeout_s", 600.0, "--strategy=multi_worker: seconds to wait "
                       "for the other TF_CONFIG tasks before giving up, naming those not "
                       "reached.",
                       lower_bound=0.0, flag_values=flag_values)
    flags.DEFINE_integer("logical_cpus", 0, "Split the CPU into this many logical devices "
                         "(to try --strategy=mirrored without GPUs).", lower_bound=0,
                         flag_values=flag_values)
    return NAMES


def strategy(flag_values=FLAGS):
    """The strategy of the parsed flags; None for --strategy=default."""
    from tfcaf.distribute.strategy import make_strategy, split_cpu
    if flag_values.logical_cpus:
        split_cpu(flag_values.logical_cpus)
    if flag_values.strategy == "default":
        return None
    return make_strategy(flag_values.strategy, flag_values.worker_timeout_s)
