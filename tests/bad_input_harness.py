"""Runs many command lines of one binary in one interpreter, so that a table
of bad inputs costs one TensorFlow import per binary, not one per case.

Used by the `tests/test_bad_inputs_*.py` tables:

    outcomes = run_cases("visualize", [Case("missing image", ["--model=m.keras",
                                             "--images=nope.png"])], cwd=tmp_path)
    outcomes["missing image"].status, .stdout, .stderr

Each case runs as `bin/<binary> ARGV` would (`tfcaf.cli.launch.run`): flags
are reset between cases, stdout and stderr are captured at the file
descriptors (so native TensorFlow output and logging are seen), and a case
that runs longer than its `timeout_s` is stopped and reported with status
"timeout". A case may set environment variables for its run, and
`interrupt_after` (a regex): once its stderr matches, the process gets a
real SIGINT, as Ctrl-C sends.
"""

import contextlib
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass(frozen=True)
class Case:
    """One command line: `bin/<binary> *argv`, run in the table's folder."""
    name: str
    argv: list
    timeout_s: int = 120
    env: dict = dataclasses.field(default_factory=dict)
    interrupt_after: str = ""


@dataclasses.dataclass(frozen=True)
class Outcome:
    """Exit status (an int, or "timeout") and the captured output."""
    status: object
    stdout: str
    stderr: str

    @property
    def last_line(self):
        """The last non-empty line of stderr ('' if none)."""
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else ""


def run_cases(binary, cases, cwd, timeout_s=900):
    """Runs `cases` of `bin/<binary>` in one child interpreter, in `cwd`.

    Returns:
        {case name: Outcome}.
    """
    names = [c.name for c in cases]
    if len(set(names)) != len(names):
        raise ValueError(f"case names repeat: {sorted(n for n in names if names.count(n) > 1)}")
    payload = json.dumps({"binary": binary, "cases": [dataclasses.asdict(c) for c in cases]})
    env = dict(os.environ, TFCAF_NO_VENV_SWITCH="1", TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("TFCAF_DEBUG", None)
    proc = subprocess.run([sys.executable, os.path.abspath(__file__)], input=payload, cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        raise RuntimeError(f"harness failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    results = json.loads(proc.stdout.splitlines()[-1])
    return {name: Outcome(**result) for name, result in results.items()}


def save_tiny_classifier(path, size=24):
    """Saves a tiny 3-class CNN on raw pixels ((size, size, 3) in [0, 255])
    as a .keras file at `path`: the model most table rows run."""
    import keras
    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu",
                            name="last_conv")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x)).save(path)


class _Timeout(BaseException):
    """Raised by the alarm; a BaseException so that no `except Exception`
    in the binary swallows it."""


@contextlib.contextmanager
def _captured_fds():
    """Redirects fds 1 and 2 to temporary files; yields a dict that holds
    their text once the block ends."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    files = {fd: tempfile.TemporaryFile() for fd in (1, 2)}
    text = {}
    for fd, f in files.items():
        os.dup2(f.fileno(), fd)
    text["stderr_fd"] = files[2].fileno()
    try:
        yield text
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, f in files.items():
            os.dup2(saved[fd], fd)
            os.close(saved[fd])
            f.seek(0)
            text[fd] = f.read().decode("utf-8", "replace")
            f.close()


def _alarm(signum, frame):
    raise _Timeout()


def _interrupt_when(pattern, stderr_fd, done):
    """Sends this process SIGINT once the captured stderr matches `pattern`."""
    while not done.wait(0.01):
        size = os.fstat(stderr_fd).st_size
        if re.search(pattern, os.pread(stderr_fd, size, 0).decode("utf-8", "replace")):
            if not done.is_set():
                os.kill(os.getpid(), signal.SIGINT)
            return


def _run_one(binary, case):
    from absl import flags
    from tfcaf.cli import launch
    flags.FLAGS.unparse_flags()
    saved_env = {k: os.environ.get(k) for k in case["env"]}
    os.environ.update(case["env"])
    status = 0
    done = threading.Event()
    watcher = None
    with _captured_fds() as text:
        if case["interrupt_after"]:
            watcher = threading.Thread(target=_interrupt_when, daemon=True,
                                       args=(case["interrupt_after"], text["stderr_fd"], done))
            watcher.start()
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(case["timeout_s"])
        try:
            launch.run(binary, [binary] + list(case["argv"]))
        except SystemExit as exit_:
            code = exit_.code
            status = code if isinstance(code, int) else (0 if code is None else 1)
        except _Timeout:
            status = "timeout"
        finally:
            signal.alarm(0)
            done.set()
            if watcher is not None:
                watcher.join()
    for key, value in saved_env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    return {"status": status, "stdout": text[1], "stderr": text[2]}


def _child():
    # Ctrl-C as in a terminal: a suite started in the background (`make
    # test &`, nohup) hands its processes SIGINT ignored, and Python then
    # installs no KeyboardInterrupt handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    request = json.loads(sys.stdin.read())
    results = {case["name"]: _run_one(request["binary"], case) for case in request["cases"]}
    sys.stdout.write("\n" + json.dumps(results) + "\n")


if __name__ == "__main__":
    _child()
