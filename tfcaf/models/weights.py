"""Strict loading of weights files into tfcaf models, and the one message
for an ImageNet weights download that fails."""

import contextlib
import io
import os
import re
import tempfile
import warnings
import zipfile

import h5py

from tfcaf.errors import TfcafError


def random_weights(weights):
    """Whether a `weights` argument asks for random weights: None or
    "none" (any case), as `--weights=none` passes it."""
    return weights is None or (isinstance(weights, str) and weights.lower() == "none")


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
        TfcafError: `path` does not exist or does not hold exactly
            `model`'s weights.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise TfcafError(
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
        raise TfcafError(
            f"weights file '{path}' does not match model '{model.name}': "
            f"{err}") from None
    if stored is None:
        return
    extra = sorted(stored - _model_paths(model))
    if extra:
        raise TfcafError(
            f"weights file '{path}' does not match model '{model.name}': it "
            f"holds {len(extra)} arrays the model has no place for (e.g. "
            f"'{extra[0]}'); it was saved from a different architecture")


def keras_cache_dir():
    """The folder where Keras looks for downloaded weights before fetching
    them: `$KERAS_HOME/models`, by default `~/.keras/models`."""
    home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return os.path.join(home, "models")


# keras.utils.get_file reports a failed fetch as a bare Exception.
_FETCH_FAILURE = re.compile(r"URL fetch failure on (\S+?): (?:None -- )?(.*)", re.S)


@contextlib.contextmanager
def imagenet_download(what):
    """Turns a failed download of ImageNet weights inside the block into one
    `TfcafError` saying what was fetched and how to go on offline.

    Args:
        what: the model being built, for the message (e.g. "ResNet50").

    Raises:
        TfcafError: a Keras weights download failed (no internet, proxy,
            server error); other exceptions pass unchanged.
    """
    try:
        yield
    except Exception as error:  # get_file raises Exception itself
        failure = _FETCH_FAILURE.match(str(error))
        if failure is None:
            raise
        url, reason = failure.groups()
        cached = os.path.join(keras_cache_dir(), os.path.basename(url))
        raise TfcafError(
            f"could not download the ImageNet weights of {what} from {url} "
            f"({reason.strip()}); without internet use --weights=none (random "
            f"weights), --weights=<a local weights file>, or place the file "
            f"at {cached}") from None
