"""What an export fixes and records, without TensorFlow (bin/export's flag
defaults and the evaluation's SavedModel adapter read it)."""

import json
import os

# The explain signatures' default iteration cap: a bounded latency.
EXPORT_ITERATIONS = 300
# The export's solver settings, layer, output kind and versions (JSON), in
# the folder TF Serving leaves to the user (it also holds warm-up requests).
SETTINGS_FILE = ("assets.extra", "tfcaf_solver.json")


def read_settings(path):
    """The settings the export at `path` recorded (`export_savedmodel`:
    "solver", "layer", "output", "signatures", "versions"), or None for an
    export written before tfcaf recorded them."""
    file = os.path.join(path, *SETTINGS_FILE)
    if not os.path.isfile(file):
        return None
    with open(file) as f:
        return json.load(f)
