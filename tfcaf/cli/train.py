"""Trains classification, ADL/ACoL and retrieval networks: flags (or an
experiment --flagfile such as flags/digits_adl.flags) -> `TrainConfig` ->
`tfcaf.training.train`. Checkpoints every --checkpoint_every steps; the
same command resumes an interrupted run.
"""

from absl import flags

from tfcaf.cli import train_flags

FLAGS = flags.FLAGS
train_flags.define_flags(FLAGS)
FLAG_GROUPS = train_flags.FLAG_GROUPS


def check_flags():
    """Every setting's range and the settings' compatibility, before
    TensorFlow loads (the split over replicas is checked again once the
    strategy is known)."""
    from tfcaf.training.config import validate
    validate(train_flags.config_from_flags(FLAGS))


def main(argv):
    del argv
    if FLAGS.logical_cpus:
        from tfcaf.distribute.strategy import split_cpu
        split_cpu(FLAGS.logical_cpus)
    from tfcaf.training import train
    result = train(train_flags.config_from_flags(FLAGS))
    print("done: " + "  ".join(f"{k} {v}" for k, v in result.items()))


if __name__ == "__main__":
    from tfcaf.cli.launch import run
    run("train")
