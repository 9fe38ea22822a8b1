"""bin/visualize's resumable runs: `--out_dir` records what the run's files
depend on and whether the run finished (`RUN_FILE`, one of the run's
files). The same command after a crash, SIGKILL or Ctrl-C skips every
image whose files are all on disk. Unlike bin/evaluate's shards, whose
numbers would mix, an unfinished run with other settings is not refused:
its files are replaced, as any earlier run's (`tfcaf.outputs`), and the
log says what differed.

In a multi-worker run every worker writes its images' files into the same
`--out_dir` (a file system all of them share) and then a marker naming the
run; the chief waits for every marker and file, lists them as the run's
and removes the markers."""

import json
import logging
import os
import time

from tfcaf import run_identity
from tfcaf.errors import TfcafError
from tfcaf.outputs import temporary_name

RUN_FILE = ".tfcaf_visualize_run.json"
log = logging.getLogger("tfcaf.visualize")


def run_file(out_dir):
    return os.path.join(out_dir, RUN_FILE)


def _recorded(out_dir):
    try:
        with open(run_file(out_dir)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def finished_images(out_dir, identity, files):
    """Indices of the images whose files (`files[i]`: every path image i
    writes) an unfinished run of the same `identity` left complete."""
    recorded = _recorded(out_dir)
    if recorded is None or recorded.get("finished", True):
        return []
    differing = run_identity.differences(recorded.get("identity", {}),
                                         run_identity.as_json(identity))
    if differing:
        log.info("replacing the files of an unfinished run with another %s", differing[0][0])
        return []
    done = [i for i, paths in enumerate(files) if all(os.path.isfile(p) for p in paths)]
    if done:
        log.info("resuming: %d of %d images already explained in %s", len(done), len(files),
                 out_dir)
    return done


def record(outputs, out_dir, identity, finished):
    """Writes the run's record through the `OutputSet` `outputs`."""
    text = json.dumps({"identity": run_identity.as_json(identity), "finished": finished},
                      indent=1, sort_keys=True)

    def writer(path):
        with open(path, "w") as f:
            f.write(text)
    outputs.write(run_file(out_dir), writer)


def _marker(out_dir, worker):
    return os.path.join(out_dir, f".tfcaf_visualize_worker-{worker}.json")


def finish_worker(outputs, out_dir, identity, replicas, other_files, timeout_s, poll_s=0.2):
    """Ends this process's part of a run: a worker other than the chief
    writes its marker; the chief waits up to `timeout_s` seconds for the
    other workers' markers and `other_files` (lists of paths), keeps those
    files as the run's (`OutputSet.keep`) and records the run finished.

    Raises:
        TfcafError: the chief waited `timeout_s` seconds, naming the first
            worker or file missing.
    """
    name = run_identity.digest(identity)
    if not replicas.chief:
        marker = _marker(out_dir, replicas.worker)
        with open(temporary_name(marker), "w") as f:
            f.write(json.dumps({"run": name}))
        os.replace(temporary_name(marker), marker)
        return
    markers = [_marker(out_dir, w) for w in range(1, replicas.workers)]
    waiting = markers + [p for paths in other_files for p in paths]
    deadline = time.monotonic() + timeout_s
    while waiting and time.monotonic() < deadline:
        waiting = [p for p in waiting if not _arrived(p, name, p in markers)]
        if waiting:
            time.sleep(poll_s)
    if waiting:
        raise TfcafError(f"--out_dir={out_dir}: waited {timeout_s:g} s (--worker_timeout_s) "
                         f"for {waiting[0]} from another worker (is --out_dir on a file "
                         "system every worker shares?)")
    for paths in other_files:
        for path in paths:
            outputs.keep(path)
    record(outputs, out_dir, identity, finished=True)
    for marker in markers:
        os.remove(marker)


def _arrived(path, run, is_marker):
    """`path` is on disk (and, for a marker, names `run`)."""
    if not is_marker:
        return os.path.isfile(path)
    try:
        with open(path) as f:
            return json.load(f).get("run") == run
    except (OSError, ValueError):
        return False
