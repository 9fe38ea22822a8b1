"""Pictures of heatmaps: panels (original | heatmap | overlay) and GIFs."""

import os

import cv2
import numpy as np
from PIL import Image


def colorize(heatmap):
    """(H, W) map in [0, 1] -> (H, W, 3) uint8 RGB with OpenCV's JET map."""
    gray = np.clip(np.nan_to_num(heatmap) * 255.0, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(gray, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def overlay(image, heatmap, alpha=0.5):
    """Blends the colorized heatmap over an RGB uint8 image (H, W, 3)."""
    return cv2.addWeighted(image, 1.0 - alpha, colorize(heatmap), alpha, 0.0)


def panel(image, heatmap):
    """original | heatmap | overlay side by side, (H, 3W, 3) uint8 RGB."""
    return np.concatenate([image, colorize(heatmap), overlay(image, heatmap)], axis=1)


def write_png(path, rgb):
    """Writes an RGB uint8 image; raises OSError naming the path on failure."""
    if not cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write image '{path}'")


def write_gif(path, image, frames, duration_ms=80):
    """Animated GIF of overlays, one per (H, W) heatmap in `frames`."""
    pictures = [Image.fromarray(overlay(image, f)) for f in frames]
    pictures[0].save(path, save_all=True, append_images=pictures[1:],
                     duration=duration_ms, loop=0)


def read_rgb(path, size):
    """Reads an image file as (H, W, 3) uint8 RGB resized to `size` (H, W).

    Raises:
        FileNotFoundError / ValueError naming the file when it is missing or
        not a readable image.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image '{path}' does not exist")
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"image '{path}' is not a readable image")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)

