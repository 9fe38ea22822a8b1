"""The one rule for what a run writes, followed by every binary.

A run owns the files it writes to its output folder, and only those:

- Each file is written under a temporary name beside its final one and
  renamed into place, so no reader sees half a file, and a failed write (a
  full disk, Ctrl-C) leaves nothing of it behind.
- A folder lists the files its last run wrote in `MANIFEST`. A new run may
  replace those; when it ends it removes the ones it did not write again,
  so the folder holds exactly one run's set (no stale `examples.png` of an
  earlier run beside a new report).
- A run never replaces a file that no earlier tfcaf run wrote there (a
  user's file, a photo) nor any file it reads: that is refused before the
  first file is written, in one line naming the file.

`bin/export` follows it with one version folder as the set: a run adds a
new version and never replaces one (`tfcaf.export.savedmodel`).
"""

import errno
import json
import logging
import os

from tfcaf.errors import TfcafError

MANIFEST = ".tfcaf_outputs.json"
log = logging.getLogger("tfcaf.outputs")


class OutputError(TfcafError):
    """An output the rule refuses, or one the operating system could not write."""


def temporary_name(path):
    """Where `path` is written before it is renamed into place: a hidden
    name in the same folder that keeps the extension (cv2, numpy and PIL
    pick the format from it)."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f".tmp-{os.getpid()}-{name}")


def write_failure(path, error):
    """The `OutputError` for an `OSError` raised while writing `path`."""
    reason = error.strerror if error.strerror else str(error)
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        reason += " (free some space and run again)"
    return OutputError(f"cannot write '{path}': {reason}")


def _named(label, folder):
    """"--out_dir=x" for a flag, "output folder 'x'" for anything else."""
    return f"{label}={folder}" if label.startswith("--") else f"{label} '{folder}'"


def check_folder(folder, label="output folder"):
    """Raises `OutputError` when `folder`, or a parent of it, is an
    existing file: the folder could not be created."""
    path = os.path.abspath(folder)
    while not os.path.isdir(path):
        if os.path.lexists(path):
            where = "" if path == os.path.abspath(folder) else f": '{path}'"
            raise OutputError(f"{_named(label, folder)}{where} is an existing file, not a folder")
        parent = os.path.dirname(path)
        if parent == path:
            return
        path = parent


def make_folder(folder, label="output folder"):
    """Creates `folder` and its parents; one `OutputError` line if it cannot."""
    check_folder(folder, label)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise OutputError(f"{_named(label, folder)}: cannot create the folder: "
                          f"{error.strerror or error}") from None


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _identity(path):
    status = os.stat(path)
    return status.st_dev, status.st_ino


def _inside(name):
    """Whether a manifest entry names a file inside its folder (an edited
    manifest must not make a run delete files elsewhere)."""
    return (isinstance(name, str) and name and not os.path.isabs(name)
            and os.path.normpath(name) == name and not name.startswith(".."))


def _read_manifest(folder):
    """Relative names of the files an earlier run wrote to `folder`."""
    try:
        with open(os.path.join(folder, MANIFEST)) as f:
            names = json.load(f)["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    return {n for n in names if _inside(n)} if isinstance(names, list) else set()


class OutputSet:
    """The files one run writes under `folder` (see the module docstring).

    Use: `claim(paths)` every file the run will write (checked and recorded
    before any is written), `write(path, writer)` each one, then `finish()`.

    Args:
        folder: output folder; created with the first file.
        label: how messages name the folder, e.g. "--out_dir".
        inputs: files the run reads; none of them is ever written.
        staged: keep every file under its temporary name until `finish`
            (all or nothing, for a report whose files belong together);
            else each file is renamed into place once written (a long run
            keeps what it finished).

    Attributes:
        written: final paths written so far (renamed into place).
    """

    def __init__(self, folder, label="output folder", inputs=(), staged=False):
        check_folder(folder, label)
        self.folder, self.label, self.staged = folder, label, staged
        self._inputs = {_identity(p) for p in inputs if os.path.exists(p)}
        self._earlier = _read_manifest(folder)
        self._created = not os.path.isdir(folder)
        self._claimed, self._pending, self.written = set(), [], []
        self._listed = False

    def _name(self, path):
        name = os.path.relpath(path, self.folder)
        if not _inside(name):
            raise ValueError(f"'{path}' is not inside the output folder '{self.folder}'")
        return name

    def _refusal(self, path):
        """Why `path` may not be written (None if it may)."""
        where = _named(self.label, self.folder)
        check_folder(os.path.dirname(path) or ".", self.label)
        if os.path.lexists(path) and self._inputs and _identity(path) in self._inputs:
            return f"{where}: '{path}' is an input of this run; choose another {self.label}"
        if os.path.isdir(path):
            return f"{where}: '{path}' is a folder; move it or choose another {self.label}"
        if os.path.lexists(path) and self._name(path) not in self._earlier:
            return (f"{where}: '{path}' exists and no earlier tfcaf run wrote it there; "
                    f"move it or choose another {self.label}")
        return None

    def claim(self, paths):
        """Checks every path the run will write and records them, before any
        file is written.

        Raises:
            OutputError: a path is an input, a folder, a file no tfcaf run
                wrote, or named twice (the message names the first).
        """
        names = [self._name(p) for p in paths]
        seen = set(self._claimed)
        for path, name in zip(paths, names):
            if name in seen:
                raise OutputError(f"{_named(self.label, self.folder)}: two outputs of this "
                                  f"run are named '{path}'")
            seen.add(name)
            refusal = self._refusal(path)
            if refusal:
                raise OutputError(refusal)
        self._claimed = seen
        self._listed = False

    def write(self, path, writer):
        """Runs `writer(temporary)` and renames the file to `path` (claimed).

        Raises:
            OutputError: the operating system refused the write (a full
                disk, ...); no part of the file is left.
        """
        if self._name(path) not in self._claimed:
            raise ValueError(f"'{path}' was not claimed before it was written")
        if not self.staged and not self._listed:
            # Listed before they exist: a killed run's files stay replaceable.
            self._write_manifest(self._earlier | self._claimed)
            self._listed = True
        make_folder(os.path.dirname(path) or ".", self.label)
        temporary = temporary_name(path)
        try:
            writer(temporary)
            if not self.staged:
                os.replace(temporary, path)
        except BaseException as error:  # Ctrl-C too: no temporary file stays
            _remove(temporary)
            if isinstance(error, OSError):
                raise write_failure(path, error) from error
            raise
        if self.staged:
            self._pending.append((temporary, path))
        elif path not in self.written:  # a file written again is one file
            self.written.append(path)

    def keep(self, path):
        """Counts the claimed file `path`, written by an earlier unfinished
        run of the same settings, as this run's own (a resumed run keeps
        it rather than writing it again)."""
        if self._name(path) not in self._claimed or not os.path.isfile(path):
            raise ValueError(f"'{path}' is not a claimed file on disk")
        self.written.append(path)

    def discard(self):
        """After a failure: removes the staged files (and the folder, if this
        run created it and it is empty); renamed files stay, listed."""
        for temporary, _ in self._pending:
            _remove(temporary)
        self._pending = []
        if self._created:
            try:
                os.rmdir(self.folder)
            except OSError:  # files of this run, or of someone else, are in it
                pass

    def finish(self):
        """Renames the staged files into place, removes the files earlier
        runs wrote that this one did not, and records this run's set.

        Returns:
            The number of this run's files on disk.
        """
        names = {self._name(p) for _, p in self._pending} | {self._name(p) for p in
                                                             self.written}
        if self._pending:
            self._write_manifest(self._earlier | names)
            for temporary, path in self._pending:
                os.replace(temporary, path)
                self.written.append(path)
            self._pending = []
        stale = sorted(self._earlier - names)
        for name in stale:
            self._remove_stale(name)
        if stale:
            log.info("removed %d files an earlier run wrote to %s", len(stale), self.folder)
        self._write_manifest(names)
        return sum(os.path.isfile(p) for p in self.written)

    def _remove_stale(self, name):
        path = os.path.join(self.folder, name)
        if os.path.isfile(path) or os.path.islink(path):
            _remove(path)
        folder = os.path.dirname(path)
        while os.path.abspath(folder) != os.path.abspath(self.folder):
            try:
                os.rmdir(folder)  # only if the removal left it empty
            except OSError:
                break
            folder = os.path.dirname(folder)

    def _write_manifest(self, names):
        make_folder(self.folder, self.label)
        path = os.path.join(self.folder, MANIFEST)
        temporary = temporary_name(path)
        try:
            with open(temporary, "w") as f:
                json.dump({"written_by": "tfcaf", "files": sorted(names)}, f, indent=1)
            os.replace(temporary, path)
        except OSError as error:
            _remove(temporary)
            raise write_failure(path, error) from error
