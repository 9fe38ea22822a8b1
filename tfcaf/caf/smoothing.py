"""Softplus stand-ins for a head's ReLUs, for the first L-BFGS phases.

A ReLU head makes the L2-CAF objective piecewise smooth: thousands of
kinks lie near its minimum (VGG16's fc1 and fc2 have 8,192 ReLUs), and
L-BFGS stalls at one of them, short of where the authors' Adam run ends.
Minimising first with every ReLU replaced by softplus(β·x)/β (smooth, and
within log(2)/β of the ReLU), β growing `SMOOTHING_STEP`-fold per phase,
and then with the exact head from there ends as low as Adam does, at
L-BFGS's cost (README, "L2-CAF quality and speed"). This is the smoothing
method for nonsmooth optimisation (Chen, Math. Program. 134, 2012) with
`SolverConfig.smoothing_stages` smoothing steps.

β is set per ReLU and problem from the spread of its inputs: β =
sharpness / std of the problem's pre-activations at its initial filter, so
the stand-in is equally close to the ReLU whatever the layer's scale.
"""

import keras
import tensorflow as tf

# Each smoothing stage after the first is this many times sharper.
SMOOTHING_STEP = 4.0


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
    """Calibration of the softplus stand-ins of one solve: called as the
    head's ReLUs on all P problems at their initial filters, it records
    each ReLU's (P,) β and returns the exact ReLU.

    Each problem's β comes from its own inputs, so that a result does not
    depend on the rest of its batch.

    Args:
        sharpness: β times the std of a ReLU's pre-activations (> 0).
    """

    def __init__(self, sharpness):
        self.sharpness = sharpness
        self._betas = {}

    @property
    def calibrated(self):
        """Whether calibration met any ReLU."""
        return bool(self._betas)

    def relu(self, key, x):
        """The exact ReLU of x (P, ...) for the ReLU identified by `key`,
        recording its β."""
        spread = tf.math.reduce_std(tf.cast(x, tf.float32), axis=list(range(1, len(x.shape))))
        self._betas[key] = self.sharpness / tf.maximum(spread, 1e-12)
        return tf.nn.relu(x)

    def for_rows(self, rows, scale=1.0):
        """The stand-ins for calls on the problems `rows` ((R,) int32;
        None: all P), with every β multiplied by `scale`."""
        return StandIns(self._betas, rows, scale)


class StandIns:
    """softplus(β·x)/β in place of each calibrated ReLU, for calls on the
    problems `rows` of the calibration."""

    def __init__(self, betas, rows, scale=1.0):
        self._betas = betas
        self._rows = rows
        self._scale = scale

    def relu(self, key, x):
        """The stand-in for the ReLU `key` of x (R, ...)."""
        beta = self._betas[key]
        if self._rows is not None:
            beta = tf.gather(beta, self._rows)
        beta = tf.reshape(beta * self._scale, [-1] + [1] * (len(x.shape) - 1))
        # In float32 whatever x's dtype: β = sharpness / std overflows
        # float16 for inputs of small spread (mixed precision heads).
        smooth = tf.nn.softplus(beta * tf.cast(x, tf.float32)) / beta
        return tf.cast(smooth, x.dtype)
