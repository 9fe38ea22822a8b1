"""The `--model_dir` of a training run: checked, and locked for one run.

Two runs writing one folder would interleave checkpoints, event files and
model.keras. `RunLock` takes an exclusive `fcntl.flock` on
`model_dir/train.lock`: the operating system drops it when the process
ends, however it ends, so a killed run never leaves the folder locked. The
file itself stays (deleting it would let two runs lock two different files)
and records who holds it, for the refusal message.
"""

import datetime
import fcntl
import json
import os
import socket

from tfcaf.errors import TfcafError
from tfcaf.outputs import make_folder

LOCK_FILE = "train.lock"


class ModelDirInUse(TfcafError):
    """Another run holds the lock of this model_dir."""


def make_model_dir(model_dir):
    """Creates `model_dir` (and its parents) unless it exists as a folder.

    Raises:
        OutputError: `model_dir`, or a parent of it, is an existing file,
            or the folder cannot be created (the message says why).
    """
    make_folder(model_dir, "--model_dir")
    return model_dir


class RunLock:
    """Exclusive lock of a model_dir for one training run.

    Use as a context manager, or `acquire()` / `release()`.

    Args:
        model_dir: the run's folder (created if needed).
    """

    def __init__(self, model_dir):
        self.model_dir = model_dir
        self.path = os.path.join(model_dir, LOCK_FILE)
        self._file = None
        self._created = False

    def acquire(self):
        """Takes the lock; returns self.

        Raises:
            ModelDirInUse: another process holds it (names the folder and
                that run's pid, host and start time).
            TfcafError: `model_dir` is a file.
        """
        self._created = not os.path.isdir(self.model_dir)
        make_model_dir(self.model_dir)
        lock_file = open(self.path, "a+")
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(lock_file)
            lock_file.close()
            raise ModelDirInUse(
                f"--model_dir={self.model_dir} is in use by another bin/train run "
                f"({holder}); wait for it to end or use another --model_dir") from None
        lock_file.seek(0)
        lock_file.truncate()
        json.dump({"pid": os.getpid(), "host": socket.gethostname(),
                   "started": datetime.datetime.now(datetime.timezone.utc)
                   .strftime("%Y-%m-%d %H:%M:%S UTC")}, lock_file)
        lock_file.flush()
        self._file = lock_file
        return self

    def release(self, discard=False):
        """Drops the lock (closing the file drops the flock).

        Args:
            discard: the run failed before writing anything: when `acquire`
                created `model_dir`, remove it again, so that a failed start
                leaves no empty folder behind.
        """
        if self._file is None:
            return
        if discard and self._created:
            os.remove(self.path)
        self._file.close()
        self._file = None
        if discard and self._created:
            try:
                os.rmdir(self.model_dir)
            except OSError:  # something else was written there meanwhile
                pass

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc_info):
        self.release()


def _describe(lock_file):
    """'pid P on host H, started T' from the holder's record."""
    lock_file.seek(0)
    try:
        record = json.loads(lock_file.read())
        return f"pid {record['pid']} on host {record['host']}, started {record['started']}"
    except (ValueError, KeyError):
        return "a process that has not yet written its pid"
