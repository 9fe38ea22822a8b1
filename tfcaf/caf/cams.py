"""The gradient and activation CAM variants of pytorch-grad-cam, on a split
model (docs/method.md §2): XGradCAM, HiResCAM, LayerCAM, EigenCAM.

Each takes A = feature maps (P, h, w, C) float32 and, where it needs one,
the head and a `targets.Objective` whose score it differentiates
(`baselines.score_gradients`), and returns (P, h, w) float32 raw maps, as
pytorch-grad-cam's `get_cam_image` followed by its ReLU (its
`compute_cam_per_layer` clips at 0 before scaling). Graph-safe.
"""

import tensorflow as tf

from tfcaf.caf.baselines import score_gradients

# pytorch-grad-cam's XGradCAM denominator guard.
XGRADCAM_EPSILON = 1e-7


def xgradcam(head, feature_maps, targets=None, epsilon=XGRADCAM_EPSILON):
    """XGradCAM (Fu et al., BMVC 2020): w_c = Σ_ij g A / (Σ_ij A + ε),
    map = ReLU(Σ_c w_c A_c)."""
    g = score_gradients(head, feature_maps, targets)
    sums = tf.reduce_sum(feature_maps, axis=[1, 2], keepdims=True)
    weights = tf.reduce_sum(g * feature_maps / (sums + epsilon), axis=[1, 2])
    return tf.nn.relu(tf.einsum("bhwc,bc->bhw", feature_maps, weights))


def hirescam(head, feature_maps, targets=None):
    """HiResCAM (Draelos & Carin, 2020): ReLU(Σ_c g_c ⊙ A_c), the gradient
    kept per location instead of averaged."""
    g = score_gradients(head, feature_maps, targets)
    return tf.nn.relu(tf.reduce_sum(g * feature_maps, axis=-1))


def layercam(head, feature_maps, targets=None):
    """LayerCAM (Jiang et al., TIP 2021): ReLU(Σ_c ReLU(g_c) ⊙ A_c)."""
    g = score_gradients(head, feature_maps, targets)
    return tf.nn.relu(tf.reduce_sum(tf.nn.relu(g) * feature_maps, axis=-1))


def eigencam(feature_maps):
    """EigenCAM (Muhammad & Yeasin, IJCNN 2020): the projection of each
    location's (mean-centred) channel vector on the first right singular
    vector of the (h·w, C) activation matrix, clipped at 0.

    The SVD fixes a singular vector only up to its sign; pytorch-grad-cam
    keeps whatever LAPACK returns. tfcaf fixes it as sklearn's `svd_flip`
    (v-based) does: the vector's largest-magnitude entry is positive, so
    maps do not flip with the linear-algebra library (on the golden
    images this is the sign pytorch-grad-cam's LAPACK returned).
    """
    _, h, w, c = feature_maps.shape
    flat = tf.reshape(feature_maps, (-1, h * w, c))
    centred = flat - tf.reduce_mean(flat, axis=1, keepdims=True)
    _, _, v = tf.linalg.svd(centred, full_matrices=False)
    first = v[:, :, 0]
    peak = tf.gather(first, tf.argmax(tf.abs(first), axis=1), batch_dims=1)
    first *= tf.where(peak < 0, -1.0, 1.0)[:, None]
    projection = tf.einsum("bpc,bc->bp", centred, first)
    return tf.nn.relu(tf.reshape(projection, (-1, h, w)))
