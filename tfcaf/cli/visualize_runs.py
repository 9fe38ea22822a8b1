"""bin/visualize's resumable runs: `--out_dir` records what the run's files
depend on and whether the run finished (`RUN_FILE`, one of the run's
files). The same command after a crash, SIGKILL or Ctrl-C skips every
image whose files are all on disk. Unlike bin/evaluate's shards, whose
numbers would mix, an unfinished run with other settings is not refused:
its files are replaced, as any earlier run's (`tfcaf.outputs`), and the
log says what differed."""

import json
import logging
import os

from tfcaf import run_identity

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
