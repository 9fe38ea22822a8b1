"""Heatmaps and losses recorded every `snapshot_every` solver iterations
(the frames of `bin/visualize --gif`), carried through `tf.while_loop` as
a pair of TensorArrays."""

import tensorflow as tf


def stack(arrays, config):
    """(snapshots (B, S, h, w), losses (B, S)) from the loop's pair of
    TensorArrays, or (None, None) without `snapshot_every`."""
    if not config.snapshot_every:
        return None, None
    maps, losses = arrays
    return tf.transpose(maps.stack(), [1, 0, 2, 3]), tf.transpose(losses.stack())


def empty():
    """The loop's (maps, losses) snapshot TensorArrays, both empty."""
    return tuple(tf.TensorArray(tf.float32, size=0, dynamic_size=True) for _ in range(2))


def record(arrays, step, config, heatmaps, losses):
    """`arrays` with (heatmaps() (B, h, w), losses() (B,)) written at index
    step // snapshot_every when `step` is a multiple of it; both callables
    are called only then, keeping their work out of the other iterations."""
    if not config.snapshot_every:
        return arrays
    index = step // config.snapshot_every
    return tf.cond(step % config.snapshot_every == 0,
                   lambda: (arrays[0].write(index, heatmaps()), arrays[1].write(index, losses())),
                   lambda: arrays)
