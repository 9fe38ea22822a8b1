"""Strict loading of weights files into tfcaf models."""

import io
import os
import tempfile
import warnings
import zipfile

import h5py


def _array_paths(store):
    """Paths of the model arrays in a Keras 3 weights store (the optimizer's
    state, present when the saved model was compiled, left out)."""
    paths = set()

    def visit(name, item):
        if isinstance(item, h5py.Dataset) and not name.startswith("optimizer/"):
            paths.add(name)

    store.visititems(visit)
    return paths


def _stored_paths(path):
    """Array paths of a `.weights.h5` or `.keras` file; None for legacy
    `.h5` files, which Keras matches by layer on its own."""
    if path.endswith(".weights.h5"):
        with h5py.File(path, "r") as store:
            return _array_paths(store)
    if path.endswith(".keras"):
        with zipfile.ZipFile(path) as archive:
            data = archive.read("model.weights.h5")
        with h5py.File(io.BytesIO(data), "r") as store:
            return _array_paths(store)
    return None


def _model_paths(model):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.weights.h5")
        model.save_weights(path)
        return _stored_paths(path)


def load_weights_file(model, path):
    """Loads `path` into `model`, requiring an exact match.

    Keras already fails when the model has a variable the file lacks or a
    shape differs; it silently ignores arrays the model has no place for,
    which this function also rejects.

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
        with warnings.catch_warnings():
            # Keras 3.15 also walks a functional model's private
            # `_operations_by_depth` alias of its layers, finds no group for
            # it and warns that layers kept their initial weights; they were
            # loaded through "layers", and any real gap raises.
            warnings.filterwarnings(
                "ignore", message="Skipping nested container at "
                "'_operations_by_depth")
            model.load_weights(path)
        stored = _stored_paths(path)
    except (ValueError, OSError, KeyError, zipfile.BadZipFile) as err:
        raise ValueError(
            f"weights file '{path}' does not match model '{model.name}': "
            f"{err}") from None
    if stored is None:
        return
    extra = sorted(stored - _model_paths(model))
    if extra:
        raise ValueError(
            f"weights file '{path}' does not match model '{model.name}': it "
            f"holds {len(extra)} arrays the model has no place for (e.g. "
            f"'{extra[0]}'); it was saved from a different architecture")
