"""Softplus stand-ins for a head's ReLUs, for the first L-BFGS phase.

A ReLU head makes the L2-CAF objective piecewise smooth: thousands of
kinks lie near its minimum (VGG16's fc1 and fc2 have 8,192 ReLUs), and
L-BFGS stalls at one of them, short of where the authors' Adam run ends.
Minimising first with every ReLU replaced by softplus(β·x)/β (smooth, and
within log(2)/β of the ReLU) and then with the exact head from there ends
as low as Adam does, at L-BFGS's cost (README, "L2-CAF speed"). This is
the smoothing method for nonsmooth optimisation (Chen, Math. Program.
134, 2012) with one smoothing step.

β is set per ReLU from the spread of its inputs: β = sharpness / std of
the pre-activations at the initial filters, so the stand-in is equally
close to the ReLU whatever the layer's scale.
"""

import keras
import tensorflow as tf


def relu_input(layer, args, kwargs):
    """The pre-activation tensor of a standalone ReLU layer call (an
    `Activation("relu")` or a plain `ReLU()`), else None."""
    if kwargs or len(args) != 1:
        return None
    if type(layer) is keras.layers.Activation and is_relu(layer.activation):
        return args[0]
    if type(layer) is keras.layers.ReLU and layer.max_value is None and \
            not layer.negative_slope and not layer.threshold:
        return args[0]
    return None


def is_relu(activation):
    return activation is keras.activations.relu or activation is tf.nn.relu


class Smoothing:
    """The β of every ReLU of one solve, set by a calibration call.

    While `calibrating`, `relu` records each ReLU's β from its inputs and
    returns the exact ReLU; afterwards it returns the softplus stand-in for
    every ReLU seen during calibration.

    Args:
        sharpness: β times the std of a ReLU's pre-activations (> 0).
    """

    def __init__(self, sharpness):
        self.sharpness = sharpness
        self.calibrating = True
        self._betas = {}

    @property
    def calibrated(self):
        """Whether calibration met any ReLU."""
        return bool(self._betas)

    def relu(self, key, x):
        """ReLU (or its stand-in) of x for the ReLU identified by `key`."""
        if self.calibrating:
            spread = tf.math.reduce_std(tf.cast(x, tf.float32))
            self._betas[key] = self.sharpness / tf.maximum(spread, 1e-12)
            return tf.nn.relu(x)
        beta = tf.cast(self._betas[key], x.dtype)
        return tf.nn.softplus(beta * x) / beta
