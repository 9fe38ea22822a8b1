"""Pictures of heatmaps a person can read: figures with a title strip and a
colour bar, overlays, and GIFs of the L2-CAF convergence.

Images are (H, W, 3) RGB on the [0, 255] scale, uint8 or float (what
`tfcaf.data.read_image` returns); pictures are uint8. Heatmaps are (H, W)
float in [0, 1].
"""

import cv2
import numpy as np
from PIL import Image

# Figures show the image no smaller than this on its short side (small
# inputs are enlarged) and no larger than the cap (large photos shrunk).
MIN_SHORT_SIDE, MAX_SHORT_SIDE = 384, 768
# No side of a shown image exceeds this, whatever its aspect ratio: a
# figure is at most (40 + MAX_SIDE) x (3 MAX_SIDE + 90) px. Without it, the
# short-side minimum blows a 20 x 2000 px strip up to 384 x 38,400.
MAX_SIDE = 1536
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_WHITE, _INK = (255, 255, 255), (20, 20, 20)
_STRIP, _GAP, _BAR_WIDTH, _BAR_LABELS = 40, 8, 22, 44


def colorize(heatmap):
    """(H, W) map in [0, 1] -> (H, W, 3) uint8 RGB with OpenCV's JET map."""
    gray = np.clip(np.nan_to_num(heatmap) * 255.0, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(gray, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def to_uint8(image):
    """An RGB image on the [0, 255] scale as uint8, rounded and clipped."""
    if image.dtype == np.uint8:
        return image
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def overlay(image, heatmap, alpha=0.5):
    """Blends the colorized heatmap over an RGB image (H, W, 3) on the
    [0, 255] scale; returns (H, W, 3) uint8."""
    return cv2.addWeighted(to_uint8(image), 1.0 - alpha, colorize(heatmap), alpha, 0.0)


def display_size(height, width):
    """(H, W) to show an image of `height` x `width` px at: its own aspect
    ratio, the short side clipped to [MIN_SHORT_SIDE, MAX_SHORT_SIDE] and
    neither side over MAX_SIDE (the cap wins over the minimum; a side is
    never under 1 px, the only place the aspect ratio gives way)."""
    short = min(height, width)
    scale = min(np.clip(short, MIN_SHORT_SIDE, MAX_SHORT_SIDE) / short,
                MAX_SIDE / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize(image, size):
    """`image` (H, W[, C]) resized to `size` (H', W'): area averaging to
    shrink, bicubic to enlarge. Float results stay within the input's
    range: bicubic overshoots at edges, which uint8 saturates away."""
    height, width = size
    shrinking = height * width < image.shape[0] * image.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    resized = cv2.resize(image, (width, height), interpolation=interpolation)
    if image.dtype == np.uint8 or shrinking:
        return resized
    return np.clip(resized, image.min(), image.max())


def _text_scale(text, width, scale=0.65):
    """The largest font scale <= `scale` at which `text` fits in `width` px."""
    text_width = cv2.getTextSize(text, _FONT, scale, 1)[0][0]
    return scale if text_width <= width else scale * width / text_width


def title_strip(text, width, height=_STRIP):
    """A white (height, width, 3) strip with `text` whole on one line."""
    strip = np.full((height, width, 3), _WHITE, np.uint8)
    scale = _text_scale(text, width - 2 * _GAP)
    (_, text_height), _ = cv2.getTextSize(text, _FONT, scale, 1)
    baseline_y = (height + text_height) // 2
    cv2.putText(strip, text, (_GAP, baseline_y), _FONT, scale, _INK, 1, cv2.LINE_AA)
    return strip


def colour_bar(height):
    """A (height, BAR_WIDTH + labels, 3) JET scale, 1 at the top, 0 at the
    bottom, labelled 0, 0.5 and 1."""
    margin = 10
    bar_height = max(height - 2 * margin, 2)
    ramp = np.linspace(1.0, 0.0, bar_height)[:, None] * np.ones((1, _BAR_WIDTH))
    panel = np.full((height, _GAP + _BAR_WIDTH + _BAR_LABELS, 3), _WHITE, np.uint8)
    panel[margin:margin + bar_height, _GAP:_GAP + _BAR_WIDTH] = colorize(ramp)
    for value in (1.0, 0.5, 0.0):
        y = margin + round((1.0 - value) * (bar_height - 1)) + 5
        cv2.putText(panel, f"{value:g}", (_GAP + _BAR_WIDTH + 4, y), _FONT, 0.45, _INK, 1,
                    cv2.LINE_AA)
    return panel


def figure(image, heatmap, title):
    """image | heatmap | overlay with a title strip above and a colour bar.

    Args:
        image: (H, W, 3) RGB on [0, 255] at the size to show (see
            `display_size`).
        heatmap: (H, W) in [0, 1], the same size.
        title: one line (method, class, score, layer).

    Returns:
        (STRIP + H, 3W + 2 gaps + colour bar, 3) uint8 RGB.
    """
    image, height = to_uint8(image), image.shape[0]
    gap = np.full((height, _GAP, 3), _WHITE, np.uint8)
    row = np.concatenate([image, gap, colorize(heatmap), gap, overlay(image, heatmap),
                          colour_bar(height)], axis=1)
    return np.concatenate([title_strip(title, row.shape[1]), row], axis=0)


def captioned(image, caption):
    """`image` with a one-line caption strip above it."""
    return np.concatenate([title_strip(caption, image.shape[1], height=32), image], axis=0)


def write_png(path, rgb):
    """Writes an RGB uint8 image; raises OSError naming the path on failure."""
    # Encoded here and written by Python, whose OSError carries the errno
    # (a full disk): cv2.imwrite only returns False.
    encoded, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not encoded:
        raise OSError(f"could not encode image '{path}'")
    with open(path, "wb") as f:
        f.write(data.tobytes())


def write_gif(path, image, frames, captions, duration_ms=80):
    """Animated GIF of captioned overlays.

    Args:
        image: (H, W, 3) RGB on [0, 255].
        frames: (S, H, W) heatmaps in [0, 1].
        captions: S lines, one per frame (e.g. "l2caf | iteration 40 | loss -3.2").
        duration_ms: time per frame; the last frame stays 1 s.
    """
    image = to_uint8(image)
    pictures = [Image.fromarray(captioned(overlay(image, f), c))
                for f, c in zip(frames, captions)]
    durations = [duration_ms] * (len(pictures) - 1) + [1000]
    pictures[0].save(path, save_all=True, append_images=pictures[1:],
                     duration=durations, loop=0)
