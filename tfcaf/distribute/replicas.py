"""Where one process's share of a pass over many images runs: the local
replicas of a tf.distribute strategy, each working through whole batches.

A pass is cut into numbered batches; batch b goes to worker b mod W of the
W workers (`tf.distribute.InputContext.input_pipeline_id`), and a worker's
batches go round-robin to its local replicas (one per GPU, or per logical
CPU), as `distribute_datasets_from_function` hands them out. Each replica
has its own copy of the model on its device (the `replicate(device)` of
what explains: an evaluation adapter, a heatmap writer) and runs the same
per-batch code as a one-device pass, in a thread of its own so that the
devices work at once. Every image is computed in the same batch as in a
one-device run, so its numbers are the same whatever the strategy.
"""

import concurrent.futures
import contextlib
import logging

import numpy as np
import tensorflow as tf

from tfcaf.distribute.strategy import is_chief

log = logging.getLogger("tfcaf.distribute")


class Replicas:
    """The local replicas of `strategy` and their copies of `explainer`.

    Args:
        explainer: what runs a batch; it has `replicate(device)`, which
            returns a copy of it whose model lives on `device`.
        strategy: a `tf.distribute.Strategy` (None: the default strategy,
            one device).

    Attributes:
        copies: one explainer per local replica (`explainer` itself when
            there is one).
        chief: whether this process writes the results.
        worker, workers: this process's input pipeline and their number,
            once `shard` has run (the chief's is 0).
    """

    def __init__(self, explainer, strategy=None):
        self.strategy = strategy or tf.distribute.get_strategy()
        self.chief = is_chief(self.strategy)
        self.devices = _devices(self.strategy)
        self.worker, self.workers = 0, 1
        self.copies = [explainer] if len(self.devices) == 1 else \
            [explainer.replicate(device) for device in self.devices]

    def shard(self, batches, make_dataset=None):
        """(distributed dataset, the batch numbers this worker runs).

        Args:
            batches: the numbers of the batches of the pass still to run.
            make_dataset: function (this worker's batch numbers, a list) ->
                tf.data.Dataset of one element per batch, in that order, or
                None: the batch numbers alone.
        """
        mine = []

        def worker_dataset(context):
            self.worker, self.workers = context.input_pipeline_id, context.num_input_pipelines
            mine.extend(b for b in batches
                        if b % context.num_input_pipelines == context.input_pipeline_id)
            if len(self.devices) > 1 or context.num_input_pipelines > 1:
                log.info("worker %d of %d, %d replica(s) (%s): %d of the %d batches to run",
                         context.input_pipeline_id, context.num_input_pipelines,
                         len(self.devices), ", ".join(map(str, self.devices)), len(mine),
                         len(batches))
            # A batch number as a (1,) tensor of unknown length: the last
            # step then gives an idle replica an empty one (with a static
            # length the step would be dropped).
            numbers = tf.data.Dataset.from_tensor_slices(np.asarray(mine, np.int64)).batch(1)
            return tf.data.Dataset.zip((numbers, make_dataset(list(mine)))) if make_dataset \
                else numbers.map(lambda number: (number,))

        # Batches stay on the host: the per-batch code takes numpy arrays.
        options = tf.distribute.InputOptions(experimental_fetch_to_device=False)
        return self.strategy.distribute_datasets_from_function(worker_dataset, options), mine

    def run(self, distributed, work):
        """Calls `work(copy, number, *contents)` (the batch number, and the
        arrays of `make_dataset`'s element as numpy) for every batch of
        `distributed` (`shard`), each on its replica's device with its
        replica's copy, the replicas of a step at once."""
        with concurrent.futures.ThreadPoolExecutor(len(self.devices)) as pool:
            for step in distributed:
                parts = self.strategy.experimental_local_results(step)
                futures = [pool.submit(self._on_device, replica, work, part)
                           for replica, part in enumerate(parts)
                           if tf.size(part[0]) > 0]  # an idle replica's is empty
                for future in futures:
                    future.result()

    def _on_device(self, replica, work, part):
        device = self.devices[replica]
        with tf.device(device) if device else contextlib.nullcontext():
            number, *contents = tf.nest.map_structure(np.asarray, part)
            work(self.copies[replica], int(number[0]), *contents)


def model_on(model, device):
    """A copy of the Keras `model`, with its weights, whose variables live
    on `device` (a replica's own copy: no weight crosses devices per call)."""
    import keras
    with tf.device(device):
        copy = keras.models.clone_model(model)
        copy.set_weights(model.get_weights())
    return copy


def _devices(strategy):
    """This process's replica devices ([None] for the default strategy:
    wherever TensorFlow places ops)."""
    try:
        return list(strategy.extended.worker_devices)
    except RuntimeError:  # the default strategy has no device list
        return [None]
