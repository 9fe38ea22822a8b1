"""Heatmaps and losses recorded every `snapshot_every` solver iterations
(the frames of `bin/visualize --gif`), carried through `tf.while_loop`:
Adam/SGD as a pair of TensorArrays (every running problem is at the loop's
iteration), L-BFGS as `Frames` written per problem at its own count."""

from typing import NamedTuple

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


class Frames(NamedTuple):
    """Frames written per problem at its own iteration count (L-BFGS, whose
    problems advance at different paces and through two phases): maps
    (B, S, h, w), losses (B, S), written (B, S) bool."""
    maps: tf.Tensor
    losses: tf.Tensor
    written: tf.Tensor


def frames(batch, count, height, width):
    """Empty `Frames` of `count` frames for `batch` problems."""
    return Frames(tf.zeros([batch, count, height, width]), tf.zeros([batch, count]),
                  tf.zeros([batch, count], tf.bool))


def write(frames, rows, index, maps, losses):
    """`frames` with frame `index` ((R,) int32) of problems `rows` ((R,)
    int32) set to maps (R, h, w) and losses (R,)."""
    at = tf.stack([rows, index], axis=1)
    return Frames(tf.tensor_scatter_nd_update(frames.maps, at, maps),
                  tf.tensor_scatter_nd_update(frames.losses, at, losses),
                  tf.tensor_scatter_nd_update(frames.written, at, tf.ones_like(rows, tf.bool)))


def stack_frames(frames):
    """(snapshots (B, S, h, w), losses (B, S)), each frame a problem did not
    reach holding its latest earlier frame (its first, before any)."""
    count = frames.written.shape[1]
    positions = tf.where(frames.written, tf.range(count)[None], -1)
    latest = tf.transpose(tf.scan(tf.maximum, tf.transpose(positions)))
    first = tf.argmax(tf.cast(frames.written, tf.int32), axis=1, output_type=tf.int32)
    latest = tf.where(latest < 0, first[:, None], latest)
    return (tf.gather(frames.maps, latest, batch_dims=1),
            tf.gather(frames.losses, latest, batch_dims=1))
