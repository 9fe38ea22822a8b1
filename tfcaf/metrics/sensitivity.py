"""Stability of an explanation method under input noise: Average and Max
Sensitivity (Yeh et al., NeurIPS 2019) as Quantus 0.6's `AvgSensitivity`
and `MaxSensitivity` compute them.

For each image x and each of `nb_samples` noisy copies x' = x + u, u
uniform per input value, the method is run again and the sensitivity of
the copy is ‖E(x) − E(x')‖ / ‖E(x)‖ (Quantus's `difference` similarity and
`fro_norm` numerator and denominator on the flattened maps); Average
Sensitivity is their mean over the copies, Max Sensitivity their maximum
(NaN copies skipped, as Quantus's nanmean / nanmax). Lower is more stable.

The noise is in the units of the images the method takes (tfcaf models:
raw pixels in [0, 255]); Quantus's default lower_bound=0.2 was meant for
images in [0, 1].
"""

import warnings

import numpy as np

from tfcaf.errors import TfcafError
from tfcaf.metrics.checks import check_images, check_int, check_targets

NAME = "stability"
NORMS = {"fro": lambda a: np.sqrt((a * a).sum(axis=-1)),
         "l2": lambda a: np.sqrt((a * a).sum(axis=-1)),
         "linf": lambda a: np.abs(a).max(axis=-1)}


def _explained(explain, images, targets, size, abs):
    """(B, H·W) float64 maps of `explain` on a batch, checked."""
    maps = np.asarray(explain(images, targets), np.float64)
    if maps.shape != (len(images),) + size:
        raise TfcafError(f"{NAME}: explain must return (B, H, W) = "
                         f"{(len(images),) + size} maps for {len(images)} images; "
                         f"got shape {maps.shape}")
    maps = maps.reshape(len(images), -1)
    return np.abs(maps) if abs else maps


def _noise_bounds(lower_bound, upper_bound):
    """(low, high) of the uniform noise, Quantus's `batch_uniform_noise`:
    [−lower_bound, lower_bound] without an upper bound, else
    [lower_bound, upper_bound]."""
    if upper_bound is None:
        if not lower_bound > 0:
            raise TfcafError(f"{NAME}: lower_bound must be > 0 (the noise is uniform in "
                             f"[-lower_bound, lower_bound]); got {lower_bound!r}")
        return -float(lower_bound), float(lower_bound)
    if not upper_bound > lower_bound:
        raise TfcafError(f"{NAME}: upper_bound must be larger than lower_bound; got "
                         f"{upper_bound!r} <= {lower_bound!r}")
    return float(lower_bound), float(upper_bound)


def _checked(images, targets, nb_samples, batch_size, norm, reduce, lower_bound, upper_bound,
             noise):
    """The arguments of `stability`, checked: images, targets and the noise
    bounds; `TfcafError` naming the first bad one."""
    images = check_images(images, NAME)
    if targets is not None:
        targets = check_targets(targets, len(images), NAME)
    check_int(nb_samples, "nb_samples", NAME)
    check_int(batch_size, "batch_size", NAME)
    if norm not in NORMS or reduce not in ("mean", "max"):
        raise TfcafError(f"{NAME}: norm must be one of {', '.join(NORMS)} and reduce 'mean' "
                         f"or 'max'; got norm={norm!r}, reduce={reduce!r}")
    if noise is not None and np.shape(noise) != (nb_samples,) + images.shape:
        raise TfcafError(f"{NAME}: noise must be (nb_samples, N, H, W, 3) = "
                         f"{(nb_samples,) + images.shape}; got shape {np.shape(noise)}")
    return images, targets, _noise_bounds(lower_bound, upper_bound)


def stability(explain, images, targets=None, *, lower_bound=0.2, upper_bound=None,
              nb_samples=200, norm="fro", abs=False, reduce="mean", noise=None, seed=0,
              batch_size=64):
    """Average (reduce="mean") or Max (reduce="max") Sensitivity of `explain`,
    as Quantus `AvgSensitivity` / `MaxSensitivity`.

    The defaults are Quantus's: nr_samples=200, lower_bound=0.2 and no
    upper bound (noise uniform in [−0.2, 0.2] on every input value),
    Frobenius norms, abs=False (Quantus's normalise=False; normalising is
    left to `explain`), return_nan_when_prediction_changes=False. The noisy
    copies are float32(float64(x) + u), as Quantus adds its float64 noise;
    they run through `explain` in batches of `batch_size`, sample-major
    (sample s of image n is copy s · N + n).

    Args:
        explain: the method evaluated: (B, H, W, 3) images and (B,) targets
            (or None) -> (B, H, W) maps.
        images: (N, H, W, 3) images as `explain` takes them.
        targets: (N,) class ids passed on to `explain`, or None.
        lower_bound, upper_bound: noise bounds in image units, Quantus's
            names: uniform in [−lower_bound, lower_bound] when upper_bound
            is None, else in [lower_bound, upper_bound] (Quantus's
            `batch_uniform_noise`).
        nb_samples: noisy copies per image.
        norm: "fro" (= "l2") or "linf", of numerator and denominator.
        abs: take |map| of every explanation before comparing them.
        reduce: "mean" (Average Sensitivity) or "max" (Max Sensitivity).
        noise: optional (nb_samples, N, H, W, 3) float64 noise to add;
            default drawn from `seed` (np.random.default_rng, uniform, one
            draw per batch of copies in copy order).
        seed: seed of the drawn noise.
        batch_size: images per `explain` call.

    Returns:
        dict "stability" (N,) float64 (the reduced sensitivity, lower is
        more stable) and "sensitivities" (N, nb_samples) float64, one per
        noisy copy.
    """
    images, targets, (low, high) = _checked(images, targets, nb_samples, batch_size, norm,
                                            reduce, lower_bound, upper_bound, noise)
    count, height, width, _ = images.shape
    rng = np.random.default_rng(seed)
    pick = (lambda index: None) if targets is None else (lambda index: targets[index])
    original = np.concatenate([
        _explained(explain, images[i:i + batch_size], pick(slice(i, i + batch_size)),
                   (height, width), abs) for i in range(0, count, batch_size)])
    denominators = NORMS[norm](original)
    sensitivities = np.empty((count, nb_samples))
    for first in range(0, nb_samples * count, batch_size):
        copy = np.arange(first, min(first + batch_size, nb_samples * count))
        sample, image = copy // count, copy % count
        added = (np.asarray(noise, np.float64)[sample, image] if noise is not None
                 else rng.uniform(low, high, (len(copy), height, width, 3)))
        noisy = (images[image].astype(np.float64) + added).astype(np.float32)
        maps = _explained(explain, noisy, pick(image), (height, width), abs)
        with np.errstate(invalid="ignore", divide="ignore"):
            sensitivities[image, sample] = (NORMS[norm](original[image] - maps)
                                            / denominators[image])
    with warnings.catch_warnings():  # all-NaN rows give NaN, as in Quantus
        warnings.simplefilter("ignore", RuntimeWarning)
        reduced = (np.nanmean if reduce == "mean" else np.nanmax)(sensitivities, axis=1)
    return {"stability": reduced, "sensitivities": sensitivities}


def max_sensitivity(explain, images, targets=None, **options):
    """Max Sensitivity (Quantus `MaxSensitivity`): `stability` with
    reduce="max"; same arguments and result."""
    return stability(explain, images, targets, reduce="max", **options)

