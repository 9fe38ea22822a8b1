"""Resumable evaluation passes: each batch's results are written as a shard
while the pass goes, so that running the same command again after a crash,
a SIGKILL or Ctrl-C recomputes only the batches that were not finished.

The shards live beside the output folder, in `.<out_dir name>.tfcaf-partial/
<digest>/` (the output folder itself appears only with the finished results,
`tfcaf.outputs`): `run.json`, what the numbers depend on, and one
`batch-NNNNNN.npz` per finished batch, written under a temporary name and
renamed into place. A partial run of another model, method list or setting
is refused, naming what differs, unless `overwrite`. The folder is removed
once the results are written.

The workers of a multi-worker pass write their batches into the same
folder (on a file system they share), and the chief reads them all.
"""

import json
import logging
import os
import shutil
import time

import numpy as np

from tfcaf import run_identity
from tfcaf.errors import TfcafError
from tfcaf.outputs import make_folder, temporary_name

log = logging.getLogger("tfcaf.evaluate")
RUN_FILE = "run.json"


def partial_folder(out_dir):
    """Where the shards of a run into `out_dir` go."""
    parent, name = os.path.split(os.path.abspath(out_dir))
    return os.path.join(parent, f".{name}.tfcaf-partial")


def model_fingerprint(adapter):
    """sha256 of the weights of a `KerasAdapter`'s model, or of the files of
    a `SavedModelAdapter`'s export."""
    if hasattr(adapter, "model"):
        return run_identity.weights_fingerprint(adapter.model)
    return run_identity.files_fingerprint(adapter.path)


class PassShards:
    """The shards of one pass, in a subfolder of the partial-run folder
    named by a digest of the pass's identity: the workers of a
    multi-worker pass, which start at their own pace, never write into a
    folder that another is discarding.

    Args:
        out_dir: the run's output folder.
        identity: JSON-able dict of everything the per-image values depend
            on (model fingerprint, methods, metrics and their options,
            dataset, image count, batch size).
        overwrite: discard a partial run of another identity instead of
            refusing it.
        chief: whether this process removes what is discarded (in a
            multi-worker pass, one process does).
    """

    def __init__(self, out_dir, identity, overwrite=False, chief=True):
        self.identity = run_identity.as_json(identity)
        self.base = partial_folder(out_dir)
        self.folder = os.path.join(self.base, run_identity.digest(self.identity)[:16])
        for other in self._others():
            if not overwrite:
                run_identity.check_same_run(self._recorded(other), self.identity, out_dir)
            elif chief:
                shutil.rmtree(other, ignore_errors=True)

    def _others(self):
        """The subfolders of passes with another identity."""
        if not os.path.isdir(self.base):
            return []
        return [os.path.join(self.base, name) for name in sorted(os.listdir(self.base))
                if os.path.join(self.base, name) != self.folder and
                os.path.isfile(os.path.join(self.base, name, RUN_FILE))]

    @staticmethod
    def _recorded(folder):
        with open(os.path.join(folder, RUN_FILE)) as f:
            return json.load(f)

    def _path(self, index):
        return os.path.join(self.folder, f"batch-{index:06d}.npz")

    def finished(self):
        """The set of batch indices on disk."""
        if not os.path.isdir(self.folder):
            return set()
        return {int(name[len("batch-"):-len(".npz")]) for name in os.listdir(self.folder)
                if name.startswith("batch-") and name.endswith(".npz")}

    def wait_for(self, indices, timeout_s=600.0, poll_s=0.2):
        """Returns once the batches `indices` are all on disk (the other
        workers' last ones may still be on their way); `TfcafError`
        naming the missing ones after `timeout_s` seconds."""
        deadline = time.monotonic() + timeout_s
        missing = [i for i in indices if not os.path.isfile(self._path(i))]
        while missing and time.monotonic() < deadline:
            time.sleep(poll_s)
            missing = [i for i in missing if not os.path.isfile(self._path(i))]
        if missing:
            shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
            raise TfcafError(f"{self.folder}: batches {shown} did not arrive within "
                             f"{timeout_s:g} s (did every worker write to this folder, on a "
                             "file system all of them share?)")

    def load(self, index):
        """{name: array} of shard `index`."""
        with np.load(self._path(index), allow_pickle=False) as shard:
            return {name: shard[name] for name in shard.files}

    def save(self, index, arrays):
        """Writes shard `index` ({name: array}) atomically."""
        if not os.path.isfile(os.path.join(self.folder, RUN_FILE)):
            make_folder(self.folder, "partial-run folder")
            self._write(os.path.join(self.folder, RUN_FILE),
                        lambda f: f.write(json.dumps(self.identity, indent=1, sort_keys=True)),
                        "w")
        self._write(self._path(index), lambda f: np.savez(f, **arrays), "wb")

    @staticmethod
    def _write(path, writer, mode):
        temporary = temporary_name(path)
        try:
            with open(temporary, mode) as f:
                writer(f)
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)

    def remove(self):
        """Removes the shards once the run's results are written."""
        shutil.rmtree(self.base, ignore_errors=True)
