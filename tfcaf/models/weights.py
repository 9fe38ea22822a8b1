"""Strict loading of weights files into tfcaf models."""

import io
import os
import zipfile

import h5py


def _count_arrays(group):
    count = 0
    for key, item in group.items():
        if isinstance(item, h5py.Dataset):
            count += 1
        elif key != "optimizer":
            count += _count_arrays(item)
    return count


def _stored_array_count(path):
    """Number of arrays in a Keras 3 `.weights.h5` or `.keras` file, or None
    for other formats (legacy `.h5`), which Keras checks on its own."""
    if path.endswith(".weights.h5"):
        with h5py.File(path, "r") as store:
            return _count_arrays(store)
    if path.endswith(".keras"):
        with zipfile.ZipFile(path) as archive:
            data = archive.read("model.weights.h5")
        with h5py.File(io.BytesIO(data), "r") as store:
            return _count_arrays(store)
    return None


def load_weights_file(model, path):
    """Loads `path` into `model`, requiring an exact match.

    Keras already fails when the model has a variable the file lacks or a
    shape differs; it silently ignores arrays of layers the model does not
    have, which this function also rejects.

    Args:
        model: a built Keras model.
        path: `.weights.h5`, `.keras` or legacy `.h5` file.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: the file does not hold exactly `model`'s weights.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"weights file '{path}' for model '{model.name}' does not exist")
    try:
        model.load_weights(path)
        stored = _stored_array_count(path)
    except (ValueError, OSError, KeyError) as err:
        raise ValueError(
            f"weights file '{path}' does not match model '{model.name}': "
            f"{err}") from None
    if stored is not None and stored != len(model.variables):
        raise ValueError(
            f"weights file '{path}' holds {stored} arrays but model "
            f"'{model.name}' has {len(model.variables)} variables: it was "
            "saved from a different architecture")
