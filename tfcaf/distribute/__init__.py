"""tf.distribute for training and evaluation: strategies by name, meeting
the other workers of a multi-worker run, and which worker writes."""

# Loads no TensorFlow: the binaries check their --strategy before it loads.
STRATEGIES = ("default", "mirrored", "multi_worker")
