"""Evaluation outputs: metrics.json, report.md, example and sanity PNGs."""

import json
import os

import cv2
import numpy as np

from tfcaf import render

RED, GREEN = (255, 0, 0), (0, 255, 0)
PLOT_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)]


def write_json(path, payload):
    """Writes JSON via a temporary file, so a reader never sees half of it."""
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True)
    os.replace(temporary, path)


def markdown_table(rows, columns, first="method", percent=True):
    """rows: name -> {column: value}; with `percent`, values in [0, 1] are
    shown as percentages (thresholds excepted)."""
    def cell(value, column):
        if isinstance(value, float):
            if percent and "threshold" not in column:
                return f"{100 * value:.1f}"
            return f"{value:.3f}"
        return "–" if value is None else str(value)
    lines = [f"| {first} | " + " | ".join(columns) + " |",
             "| --- |" + " --- |" * len(columns)]
    for name, values in rows.items():
        lines.append(f"| {name} | " + " | ".join(cell(values.get(c), c) for c in columns) + " |")
    return "\n".join(lines)


def _draw_box(image, box, colour):
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    cv2.rectangle(image, (x0, y0), (max(x0, x1 - 1), max(y0, y1 - 1)), colour, 1)


def example_grid(path, examples, boxes_fn):
    """Rows: images; columns: input, then one overlay per method with the
    predicted box (red) and the ground truth (green). Writes a PNG."""
    rows = []
    for i, image in enumerate(examples["images"]):
        pixels = np.clip(image, 0, 255).astype(np.uint8)
        gt = [b for b in examples["boxes"][i] if (b >= 0).all() and b[2] > b[0]]
        cells = [pixels.copy()]
        for method, heatmaps in examples["heatmaps"].items():
            cell = render.overlay(pixels, heatmaps[i])
            box = boxes_fn(heatmaps[i])
            if box is not None:
                _draw_box(cell, box, RED)
            cells.append(cell)
        for cell in cells:
            for b in gt:
                _draw_box(cell, b, GREEN)
        rows.append(np.concatenate(cells, axis=1))
    grid = np.concatenate(rows, axis=0)
    header = np.full((18, grid.shape[1], 3), 255, np.uint8)
    width = grid.shape[1] // (1 + len(examples["heatmaps"]))
    for j, name in enumerate(["input", *examples["heatmaps"]]):
        cv2.putText(header, name, (j * width + 3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 0), 1, cv2.LINE_AA)
    render.write_png(path, np.concatenate([header, grid], axis=0))


def sanity_plot(path, rows, methods, key="spearman", size=(360, 640)):
    """Line plot of `key` per method over the randomisation stages."""
    height, width = size
    image = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 50, width - 150, 20, height - 90
    cv2.rectangle(image, (left, top), (right, bottom), (0, 0, 0), 1)
    low = min([-0.2] + [r[m][key] for r in rows for m in methods])
    y_of = lambda v: int(bottom - (v - low) / (1.0 - low) * (bottom - top))
    x_of = lambda k: int(left + k * (right - left) / max(len(rows), 1))
    for value in (low, 0.0, 0.5, 1.0):
        cv2.putText(image, f"{value:.1f}", (5, y_of(value) + 4), cv2.FONT_HERSHEY_SIMPLEX,
                    0.35, (0, 0, 0), 1, cv2.LINE_AA)
    labels = ["trained"] + [r["layer"] for r in rows]
    for k, label in enumerate(labels):
        org = (x_of(k) - 3, bottom + 8)
        cv2.putText(image, label[:18], org, cv2.FONT_HERSHEY_SIMPLEX, 0.3, (0, 0, 0), 1,
                    cv2.LINE_AA)
    for j, method in enumerate(methods):
        colour = PLOT_COLOURS[j % len(PLOT_COLOURS)]
        points = [(x_of(0), y_of(1.0))] + [(x_of(k + 1), y_of(r[method][key]))
                                          for k, r in enumerate(rows)]
        cv2.polylines(image, [np.array(points, np.int32)], False, colour, 2, cv2.LINE_AA)
        cv2.putText(image, method, (right + 10, top + 15 + 18 * j), cv2.FONT_HERSHEY_SIMPLEX,
                    0.45, colour, 1, cv2.LINE_AA)
    cv2.putText(image, f"{key} vs trained maps", (left, height - 10),
                cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    render.write_png(path, image)
