"""Where one process's share of an evaluation pass runs: the replicas of a
tf.distribute strategy, each explaining whole batches.

A pass is cut into batches of `batch_size` evenly spaced images
(`ImageDataset.evenly_spaced`); batch b goes to worker b mod W of the W
workers (`tf.distribute.InputContext.input_pipeline_id`), and a worker's
batches go round-robin to its local replicas (one per GPU, or per logical
CPU), as `distribute_datasets_from_function` hands them out. Each replica
has its own copy of the model on its device (`adapter.replicate`) and runs
the same per-batch code as a one-device pass, in a thread of its own so
that the devices work at once. Every image is computed in the same batch as
in a one-device run, so the per-image values are the same, whatever the
strategy.
"""

import concurrent.futures
import contextlib
import logging

import numpy as np
import tensorflow as tf

from tfcaf.distribute.strategy import is_chief

log = logging.getLogger("tfcaf.evaluate")


class Replicas:
    """The local replicas of `strategy` and their copies of `adapter`.

    Args:
        adapter: a `KerasAdapter` or `SavedModelAdapter`.
        strategy: a `tf.distribute.Strategy` (None: the default strategy,
            one device).

    Attributes:
        adapters: one adapter per local replica (`adapter` itself when
            there is one).
        chief: whether this process writes the results.
    """

    def __init__(self, adapter, strategy=None):
        self.strategy = strategy or tf.distribute.get_strategy()
        self.chief = is_chief(self.strategy)
        self.devices = _devices(self.strategy)
        self.adapters = [adapter] if len(self.devices) == 1 else \
            [adapter.replicate(device) for device in self.devices]

    def batches(self, dataset, positions, todo, batch_size):
        """(distributed dataset of (batch index, (images, labels, boxes)),
        the batch indices this worker runs) for the batches `todo` of the
        dataset positions `positions` ((N,) ints, `batch_size` a batch)."""
        mine = []

        def worker_batches(context):
            mine.extend(b for b in todo
                        if b % context.num_input_pipelines == context.input_pipeline_id)
            if len(self.devices) > 1 or context.num_input_pipelines > 1:
                log.info("worker %d of %d, %d replica(s) (%s): %d of the %d batches to run",
                         context.input_pipeline_id, context.num_input_pipelines,
                         len(self.devices), ", ".join(map(str, self.devices)), len(mine),
                         len(todo))
            taken = [positions[b * batch_size:(b + 1) * batch_size] for b in mine]
            indices = np.concatenate(taken) if taken else np.zeros(0, np.int64)
            examples = dataset.from_indices(tf.data.Dataset.from_tensor_slices(indices),
                                            batch_size=batch_size)
            ids = tf.data.Dataset.from_tensor_slices(np.asarray(mine, np.int64))
            return tf.data.Dataset.zip((ids, examples))

        # Batches stay on the host: the per-batch code takes numpy arrays.
        options = tf.distribute.InputOptions(experimental_fetch_to_device=False)
        return self.strategy.distribute_datasets_from_function(worker_batches, options), mine

    def run(self, distributed, explain):
        """Calls `explain(adapter, index, images, labels, boxes)` (numpy
        arrays) for every batch of `distributed` (`batches`), each on its
        replica's device, the replicas of a step at once."""
        with concurrent.futures.ThreadPoolExecutor(len(self.devices)) as pool:
            for step in distributed:
                parts = self.strategy.experimental_local_results(step)
                futures = [pool.submit(self._on_device, replica, explain, part)
                           for replica, part in enumerate(parts)
                           if int(tf.shape(part[1][1])[0])]  # an idle replica's empty batch
                for future in futures:
                    future.result()

    def _on_device(self, replica, explain, part):
        index, (images, labels, boxes) = part
        device = self.devices[replica]
        with tf.device(device) if device else contextlib.nullcontext():
            explain(self.adapters[replica], int(index), images.numpy(), labels.numpy(),
                    boxes.numpy())


def _devices(strategy):
    """This process's replica devices ([None] for the default strategy:
    wherever TensorFlow places ops)."""
    try:
        return list(strategy.extended.worker_devices)
    except RuntimeError:  # the default strategy has no device list
        return [None]
