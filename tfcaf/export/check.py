"""Loads an export with plain TensorFlow, prints its signatures and runs each
one on a sample input.

Runs as a standalone script (`python -I check.py DIR`) so that the check
proves the export needs nothing but TensorFlow; it imports nothing from
tfcaf.
"""

import sys

import numpy as np
import tensorflow as tf


def sample_input(spec, batch=2):
    """A valid sample for one input TensorSpec of a signature."""
    shape = [batch if d is None else d for d in spec.shape]
    if spec.dtype == tf.string:
        height = width = 32
        pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), np.uint8)
        return tf.stack([tf.io.encode_png(pixels)] * shape[0])
    if spec.dtype.is_integer:
        return tf.fill(shape, tf.constant(-1, spec.dtype))
    return tf.random.stateless_uniform(shape, seed=[0, 0], maxval=255.0, dtype=spec.dtype)


def check(path):
    loaded = tf.saved_model.load(path)
    for name, function in loaded.signatures.items():
        specs = function.structured_input_signature[1]
        inputs = {key: sample_input(spec) for key, spec in specs.items()}
        outputs = function(**inputs)
        described_in = ", ".join(f"{k} {specs[k].dtype.name}{list(specs[k].shape)}" for k in specs)
        described_out = ", ".join(f"{k} {v.dtype.name}{list(v.shape)}" for k, v in outputs.items())
        finite = all(np.isfinite(v.numpy()).all() for v in outputs.values()
                     if v.dtype.is_floating)
        print(f"{name}: ({described_in}) -> ({described_out}) {'ok' if finite else 'NON-FINITE'}")
        if not finite:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(check(sys.argv[1]))
