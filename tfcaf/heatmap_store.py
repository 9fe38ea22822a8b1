"""Reading back the raw maps that `bin/visualize` wrote: one call for a
whole output folder, however many images it explained."""

import json
import os

import numpy as np

from tfcaf.errors import TfcafError
from tfcaf.outputs import MANIFEST


def read_maps(folder):
    """{name: (h, w) raw map} of every `.npy` map a tfcaf run wrote in
    `folder`, keyed by its path relative to `folder` without `.npy` (e.g.
    "photos/cat_jpg" or "dog_t243"), in sorted order. Files no tfcaf run
    listed in the folder's manifest are left out.

    Raises:
        TfcafError: `folder` holds no tfcaf run's files.
    """
    try:
        with open(os.path.join(folder, MANIFEST)) as f:
            listed = json.load(f)["files"]
    except (OSError, ValueError, KeyError):
        raise TfcafError(f"'{folder}' holds no files of a tfcaf run (no readable "
                         f"{MANIFEST})") from None
    return {name[:-len(".npy")]: np.load(os.path.join(folder, name))
            for name in sorted(listed)
            if name.endswith(".npy") and os.path.isfile(os.path.join(folder, name))}
