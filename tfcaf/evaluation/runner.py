"""One pass over a dataset: outputs, heatmaps per method, and the per-image
values every "maps" metric of the registry (`tfcaf.metrics.registry`)
computes from them, batch by batch; then each metric's summary."""

import dataclasses
import logging
import time

import numpy as np
import tensorflow as tf

from tfcaf.distribute.replicas import Replicas
from tfcaf.evaluation.adapters import check_classes, top1_correct
from tfcaf.evaluation.progress import Progress
from tfcaf.metrics import registry
from tfcaf.metrics.degenerate import degenerate_maps

log = logging.getLogger("tfcaf.evaluate")


@dataclasses.dataclass
class Pass:
    """What one pass collected (N images).

    Attributes:
        outputs: (N, K) logits/probabilities or (N, D) embeddings.
        labels: (N,) class ids.
        values: method -> metric name -> key -> (N, ...) per-image values
            (the metric's `values`).
        examples: first images (n, H, W, 3), their GT boxes, and method ->
            (n, H, W) heatmaps and (n, h, w) raw maps, for the report's
            picture grid.
        degenerate: method -> number of constant or non-finite raw maps
            (`tfcaf.metrics.degenerate`).
    """
    outputs: np.ndarray
    labels: np.ndarray
    values: dict
    examples: dict
    degenerate: dict


def metric_options(config):
    """name -> resolved options of every metric of `config`
    (`Metric.resolve_options`, with `config.metric_options`)."""
    return {name: registry.metric(name).resolve_options(config,
                                                        config.metric_options.get(name))
            for name in config.metrics}


def _batch_values(batch, metrics, options):
    """metric name -> {key: (n, ...)} of one method's batch."""
    values = {}
    for metric in metrics:
        function = registry.load(metric.batch_function or metric.function)
        result = function(**metric.arguments(batch, options[metric.name], function))
        # A function returning one array gives one value per image.
        result = result if isinstance(result, dict) else {metric.name: result}
        values[metric.name] = {k: np.asarray(result[k]) for k in metric.values}
    return values


def _examples(dataset, positions, batches, size):
    """tf.data of (images, labels, boxes) for the numbered `batches` of
    `size` of the dataset `positions`."""
    taken = [positions[b * size:(b + 1) * size] for b in batches]
    return dataset.from_indices(tf.data.Dataset.from_tensor_slices(
        np.concatenate(taken) if taken else np.zeros(0, np.int64)), batch_size=size)


def _method_batch(adapter, method, images, labels, boxes, masks, scoring, config, first_image):
    """The `MetricBatch` of `method` on one batch, and its raw maps."""
    raw, heatmaps = adapter.maps(images, labels, method)
    predict, substrate = scoring if scoring else (None, None)
    return registry.MetricBatch(
        images=images, targets=labels, boxes=boxes, masks=masks, heatmaps=heatmaps,
        maps=raw, predict=predict, substrate=substrate, embedding=adapter.embedding,
        explain=lambda x, t: adapter.maps(x, t, method)[1], batch_size=config.batch_size,
        first_image=first_image, image_size=images.shape[1:3])


def _batch_record(adapter, methods, metrics, config, setup, batch, first_image, room, progress):
    """{name: array} of one batch: outputs, labels, per method its
    metrics' per-image values ("values|METHOD|METRIC|KEY"), degenerate-map
    count and the batch's first `room` images and maps ("examples|...").
    What a shard of a resumable pass holds (`resume.PassShards`). `setup`:
    (the metrics' resolved options, the adapter's scoring input or None),
    resolved once per pass."""
    images, labels, boxes, masks = batch
    options, scoring = setup
    # Copies, not views: a view would keep the whole batch alive.
    record = {"outputs": adapter.outputs(images), "labels": labels,
              "examples|images": images[:room].copy(), "examples|boxes": boxes[:room].copy()}
    for method in methods:
        started = time.monotonic()
        inputs = _method_batch(adapter, method, images, labels, boxes, masks, scoring, config,
                               first_image)
        record[f"examples|heatmaps|{method}"] = np.array(inputs.heatmaps[:room])
        record[f"examples|maps|{method}"] = np.array(inputs.maps[:room])
        record[f"degenerate|{method}"] = np.int64(degenerate_maps(inputs.maps).sum())
        for name, per_image in _batch_values(inputs, metrics, options).items():
            for key, value in per_image.items():
                record[f"values|{method}|{name}|{key}"] = value
        progress.add_method_time(method, time.monotonic() - started)
    return record


def _assemble(records, methods):
    """The `Pass` of the batches' records, in batch order."""
    joined = {}
    for record in records:
        for name, value in record.items():
            joined.setdefault(name, []).append(value)
    values = {m: {} for m in methods}
    for name, parts in joined.items():
        if name.startswith("values|"):
            _, method, metric, key = name.split("|")
            values[method].setdefault(metric, {})[key] = np.concatenate(parts)
    examples = {"images": list(np.concatenate(joined["examples|images"])),
                "boxes": list(np.concatenate(joined["examples|boxes"]))}
    for kind in ("heatmaps", "maps"):
        examples[kind] = {m: np.concatenate(joined[f"examples|{kind}|{m}"]) for m in methods}
    return Pass(np.concatenate(joined["outputs"]), np.concatenate(joined["labels"]), values,
                examples, {m: int(sum(joined[f"degenerate|{m}"])) for m in methods})


def run_pass(adapter, dataset, methods, config, example_count=8, shards=None, strategy=None):
    """Runs `adapter` over `dataset` (or an evenly spaced `config.max_images`
    slice), computing what the "maps" metrics of `config.metrics` need for
    each of `methods`.

    Args:
        shards: a `resume.PassShards`: each finished batch is written to it,
            and the batches it already holds are read, not recomputed.
            Needed with more than one worker: the chief gathers the other
            workers' batches from it.
        strategy: a `tf.distribute.Strategy` whose replicas share the
            batches (`tfcaf.distribute.replicas`); None: one device.

    Returns:
        The `Pass`, on the chief; None on the other workers of a
        multi-worker strategy.

    Raises:
        TfcafError: the dataset has more classes than the classifier has
            outputs (`adapters.check_classes`), before any image is run.
    """
    check_classes(adapter, dataset)
    metrics = [registry.metric(n) for n in config.metrics
               if registry.metric(n).scope == "maps"]
    replicas = Replicas(adapter, strategy)
    setups = {id(a): (metric_options(config), a.scores_input()
                      if any("scores" in m.needs for m in metrics) else None)
              for a in replicas.copies}
    positions = dataset.evenly_spaced_indices(min(len(dataset),
                                                  config.max_images or len(dataset)))
    size = config.batch_size
    count = -(-len(positions) // size)
    finished = shards.finished() if shards else set()
    distributed, mine = replicas.shard([b for b in range(count) if b not in finished],
                                       lambda batches: _examples(dataset, positions, batches,
                                                                 size))
    images_of = lambda batches: sum(len(positions[b * size:(b + 1) * size])  # noqa: E731
                                    for b in batches)
    if finished:
        log.info("resuming: %d of %d images reused from %s", images_of(finished),
                 len(positions), shards.folder)
    progress = Progress(images_of(finished) + images_of(mine))
    progress.add_reused(images_of(finished))
    records = {}
    masked = any("masks" in m.needs for m in metrics)

    def explain(replica_adapter, index, examples):
        images, labels, boxes = examples
        masks = dataset.gt_masks(positions[index * size:(index + 1) * size]) if masked else None
        record = _batch_record(replica_adapter, methods, metrics, config,
                               setups[id(replica_adapter)], (images, labels, boxes, masks),
                               index * size, max(0, example_count - index * size), progress)
        if shards:
            shards.save(index, record)
        records[index] = record
        progress.advance(len(labels))

    try:
        replicas.run(distributed, explain)
    except KeyboardInterrupt:
        if shards:
            log.info("%d of %d images are saved in %s: the same command resumes",
                     progress.done, progress.total, shards.folder)
        raise
    progress.close()
    if not replicas.chief:
        return None
    # Read back only what another process computed: resumed batches, and
    # the other workers'.
    others = [index for index in range(count) if index not in records]
    if others:
        shards.wait_for(others)
        records.update({index: shards.load(index) for index in others})
    return _assemble([records[index] for index in range(count)], methods)


def map_metric_tables(result, embedding, config):
    """method -> {column: value} of every "maps" metric, the top-1 rate,
    method -> curve name -> mean curve (S + 1,), and method -> {column:
    images without a value} (`registry.undefined`; methods with none left
    out)."""
    correct = top1_correct(result.outputs, result.labels, embedding)
    options = metric_options(config)
    table, curves, missing = {}, {}, {}
    for method, per_metric in result.values.items():
        table[method] = {}
        for name, values in per_metric.items():
            metric = registry.metric(name)
            table[method].update(registry.summary(metric, values, correct, options[name]))
            undefined = registry.undefined(metric, values)
            if undefined:
                missing.setdefault(method, {}).update(undefined)
            for curve, key in metric.curves.items():
                curves.setdefault(method, {})[curve] = np.mean(values[key], axis=0,
                                                               dtype=np.float64)
    return table, float(np.mean(correct)), curves, missing


def output_metrics(result, config):
    """{column: value} of the "outputs" metrics of `config` (retrieval):
    only what was asked, as NMI's K-means is the slow part."""
    options = metric_options(config)
    values = {}
    for name in config.metrics:
        metric = registry.metric(name)
        if metric.scope == "outputs":
            values.update(registry.load(metric.batch_function)(
                result.outputs, result.labels, **options[name]))
    return values
