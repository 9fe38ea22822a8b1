"""Evaluation outputs: metrics.json, report.md, example, curve and sanity
PNGs. Each writer writes the path it is given; callers give it a temporary
name and rename the file into place (`tfcaf.outputs.OutputSet.write`), so
a reader never sees half of one."""

import json

import cv2
import numpy as np

from tfcaf import render
from tfcaf.metrics.localization import valid_boxes

RED, GREEN, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 0)
PLOT_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40),
                (148, 103, 189), (140, 86, 75)]
FONT = cv2.FONT_HERSHEY_SIMPLEX
# Columns shown as plain numbers rather than percentages.
_PLAIN_COLUMNS = ("threshold", "auc")


def write_json(path, payload):
    """Writes `payload` as indented JSON with sorted keys."""
    with open(path, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True)


def write_text(path, text):
    """Writes a text file."""
    with open(path, "w") as f:
        f.write(text)


def markdown_table(rows, columns, first="method", percent=True, percent_columns=None):
    """rows: name -> {column: value}; with `percent`, values in [0, 1] are
    shown as percentages: those of `percent_columns` when given, else all
    but thresholds and AUCs."""
    def shown_as_percent(column):
        if percent_columns is not None:
            return column in percent_columns
        return percent and not any(word in column for word in _PLAIN_COLUMNS)

    def cell(value, column):
        if isinstance(value, float):
            if shown_as_percent(column):
                return f"{100 * value:.1f}"
            return f"{value:.3f}"
        return "–" if value is None else str(value)
    lines = [f"| {first} | " + " | ".join(columns) + " |",
             "| --- |" + " --- |" * len(columns)]
    for name, values in rows.items():
        lines.append(f"| {name} | " + " | ".join(cell(values.get(c), c) for c in columns) + " |")
    return "\n".join(lines)


def _draw_box(image, box, colour, scale=1.0):
    x0, y0, x1, y1 = (int(round(v * scale)) for v in box)
    cv2.rectangle(image, (x0, y0), (max(x0, x1 - 1), max(y0, y1 - 1)), colour, 1)


def _label_strip(labels, cell_width, height=22):
    """A white strip with each label centred over its cell, shrunk to fit."""
    strip = np.full((height, cell_width * len(labels), 3), 255, np.uint8)
    for j, label in enumerate(labels):
        width = cv2.getTextSize(label, FONT, 0.5, 1)[0][0]
        scale = min(0.5, 0.5 * (cell_width - 6) / max(width, 1))
        width = cv2.getTextSize(label, FONT, scale, 1)[0][0]
        cv2.putText(strip, label, (j * cell_width + (cell_width - width) // 2, height - 7),
                    FONT, scale, BLACK, 1, cv2.LINE_AA)
    return strip


def example_grid(path, examples, boxes_fn, min_cell=160):
    """Rows: images; columns: input, then one overlay per method with the
    predicted box (red) and the ground truth (green). Cells are enlarged to
    at least `min_cell` pixels so every column label fits whole.

    Args:
        examples: "images" (n, H, W, 3), "boxes" n arrays (M, 4), "heatmaps"
            and "maps": method -> (n, H, W) / (n, h, w).
        boxes_fn: (raw map, heatmap) -> predicted (4,) box in the image
            frame, or None.
    """
    methods = list(examples["heatmaps"])
    height, width = np.shape(examples["images"][0])[:2]
    scale = max(1, int(np.ceil(min_cell / width)))
    rows = []
    for i, image in enumerate(examples["images"]):
        pixels = np.clip(image, 0, 255).astype(np.uint8)
        cells = [pixels]
        for method in methods:
            cell = render.overlay(pixels, examples["heatmaps"][method][i])
            cells.append(cell)
        cells = [cv2.resize(c, (width * scale, height * scale),
                            interpolation=cv2.INTER_NEAREST) for c in cells]
        for method, cell in zip(methods, cells[1:]):
            box = boxes_fn(examples["maps"][method][i], examples["heatmaps"][method][i])
            if box is not None:
                _draw_box(cell, box, RED, scale)
        for cell in cells:
            for box in valid_boxes(examples["boxes"][i]):
                _draw_box(cell, box, GREEN, scale)
        rows.append(np.concatenate(cells, axis=1))
    strip = _label_strip(["input", *methods], width * scale)
    render.write_png(path, np.concatenate([strip, *rows], axis=0))


def _axes(image, box, x_label, y_label, y_range):
    """Frame, ticks and labels of one panel; returns (x_of, y_of)."""
    left, top, right, bottom = box
    cv2.rectangle(image, (left, top), (right, bottom), BLACK, 1)
    low, high = y_range
    x_of = lambda v: int(left + v * (right - left))
    y_of = lambda v: int(bottom - (v - low) / (high - low) * (bottom - top))
    for value in np.linspace(low, high, 5):
        cv2.putText(image, f"{value:.3g}", (left - 45, y_of(value) + 4), FONT, 0.35, BLACK, 1,
                    cv2.LINE_AA)
    for value in (0.0, 0.5, 1.0):
        cv2.putText(image, f"{value:.1f}", (x_of(value) - 8, bottom + 14), FONT, 0.35, BLACK,
                    1, cv2.LINE_AA)
    cv2.putText(image, x_label, (left, bottom + 30), FONT, 0.4, BLACK, 1, cv2.LINE_AA)
    cv2.putText(image, y_label, (left, top - 8), FONT, 0.45, BLACK, 1, cv2.LINE_AA)
    return x_of, y_of


def curves_plot(path, curves, size=(340, 900)):
    """Deletion and insertion curves (mean score against the fraction of
    pixels switched), one panel each, one line per method.

    Args:
        curves: method -> {"deletion": (S + 1,), "insertion": (S + 1,)}.
    """
    height, width = size
    image = np.full((height, width, 3), 255, np.uint8)
    kinds = [k for k in ("deletion", "insertion") if any(k in c for c in curves.values())]
    values = [v for c in curves.values() for v in c.values()]
    y_range = (min(0.0, *(float(np.min(v)) for v in values)),
               max(1e-6, *(float(np.max(v)) for v in values)))
    panel = (width - 160) // max(len(kinds), 1)
    for p, kind in enumerate(kinds):
        box = (60 + p * panel, 30, 60 + p * panel + panel - 70, height - 50)
        x_of, y_of = _axes(image, box, "fraction of pixels " +
                           ("removed" if kind == "deletion" else "inserted"),
                           f"{kind}: mean score", y_range)
        for j, method in enumerate(curves):
            curve = curves[method].get(kind)
            if curve is None:
                continue
            xs = np.linspace(0.0, 1.0, len(curve))
            points = np.array([(x_of(x), y_of(y)) for x, y in zip(xs, curve)], np.int32)
            cv2.polylines(image, [points], False, PLOT_COLOURS[j % len(PLOT_COLOURS)], 2,
                          cv2.LINE_AA)
    for j, method in enumerate(curves):
        cv2.putText(image, method, (width - 150, 45 + 20 * j), FONT, 0.45,
                    PLOT_COLOURS[j % len(PLOT_COLOURS)], 1, cv2.LINE_AA)
    render.write_png(path, image)


def sanity_plot(path, rows, methods, key="spearman", size=(360, 640)):
    """Line plot of `key` per method over the randomisation stages."""
    height, width = size
    image = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 50, width - 150, 20, height - 90
    cv2.rectangle(image, (left, top), (right, bottom), BLACK, 1)
    low = min([-0.2] + [r[m][key] for r in rows for m in methods])
    y_of = lambda v: int(bottom - (v - low) / (1.0 - low) * (bottom - top))
    x_of = lambda k: int(left + k * (right - left) / max(len(rows), 1))
    for value in (low, 0.0, 0.5, 1.0):
        cv2.putText(image, f"{value:.1f}", (5, y_of(value) + 4), FONT, 0.35, BLACK, 1,
                    cv2.LINE_AA)
    labels = ["trained"] + [r["layer"] for r in rows]
    for k, label in enumerate(labels):
        cv2.putText(image, label[:18], (x_of(k) - 3, bottom + 8), FONT, 0.3, BLACK, 1,
                    cv2.LINE_AA)
    for j, method in enumerate(methods):
        colour = PLOT_COLOURS[j % len(PLOT_COLOURS)]
        points = [(x_of(0), y_of(1.0))] + [(x_of(k + 1), y_of(r[method][key]))
                                          for k, r in enumerate(rows)]
        cv2.polylines(image, [np.array(points, np.int32)], False, colour, 2, cv2.LINE_AA)
        cv2.putText(image, method, (right + 10, top + 15 + 18 * j), FONT, 0.45, colour, 1,
                    cv2.LINE_AA)
    cv2.putText(image, f"{key} vs trained maps", (left, height - 10), FONT, 0.45, BLACK, 1,
                cv2.LINE_AA)
    render.write_png(path, image)
