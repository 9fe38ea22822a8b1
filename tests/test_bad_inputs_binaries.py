"""Bad inputs of the binaries' command lines and of bin/train (issue 21):
extra positional arguments, --help, unknown flags and flagfiles of every
binary, every numeric training flag, missing data, multi-worker peers that
never come, Ctrl-C and resume, and a fresh checkout without `.venv`.

Each row: (name, argv, expected status, regex the last stderr line must
match (or stdout for "works" rows), verdict). Verdicts: "refused" (non-zero
exit, one line), "warned" (exit 0 and a "warning:" line), "works" (exit 0,
correct output). One harness interpreter per binary runs all its rows.
"""

import collections
import json
import os
import re
import socket
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from bad_input_harness import REPO, Case, run_cases

Row = collections.namedtuple("Row", "name argv status pattern verdict env", defaults=({},))
GLOB = (r"flags take one value; quote a glob \(--images='photos/\*\.jpg'\) or separate files "
        r"with commas")
PROGRAMS = ("train", "evaluate", "export", "visualize", "demo")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tf_config(index, ports):
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


# Ports nobody listens on (a leader's own port must be free for it to bind).
LEADER_PORTS = (_free_port(), _free_port())
WORKER_PORTS = (_free_port(), _free_port())

# A string flag of each program, given an unquoted glob's files.
GLOB_FLAG = {"train": "--data_dir", "evaluate": "--model", "export": "--model",
             "visualize": "--images", "demo": "--out_dir"}
# Every program: --help, an unknown flag, an unquoted glob's extra files.
COMMON_ROWS = {program: [
    Row("help", ["--help"], 0, r"^  --\w+", "works"),
    Row("unknown flag", ["--no_such_flag=1"], 2,
        rf"^{program}: error: Unknown command line flag 'no_such_flag'", "refused"),
    Row("extra positional arguments", [GLOB_FLAG[program], "a.png", "b.png", "c.png"], 2,
        rf"^{program}: error: unexpected argument\(s\) b\.png c\.png: " + GLOB, "refused"),
    Row("many extra positional arguments", [GLOB_FLAG[program]] + [f"{i}.png" for i in range(6)],
        2, rf"^{program}: error: unexpected argument\(s\) 1\.png 2\.png 3\.png \.\.\. "
           rf"\(5 in all\): " + GLOB, "refused"),
    Row("missing flagfile", ["--flagfile=nope.flags"], 2,
        rf"^{program}: error: --flagfile: cannot open it: \[Errno 2\] No such file or "
        rf"directory: 'nope\.flags'$", "refused"),
    Row("unknown flag in a flagfile", ["--flagfile=bad.flags"], 2,
        rf"^{program}: error: Unknown command line flag 'no_such_flag'", "refused"),
] for program in PROGRAMS}

TRAIN = ["--dataset=folder", "--data_dir={data}", "--image_size=32", "--batch_size=4",
         "--train_steps=4", "--checkpoint_every=2", "--log_every=2", "--val_examples=4",
         "--summary_images=0", "--noaugment", "--lr_schedule=constant"]
TRAIN_ROWS = COMMON_ROWS["train"] + [
    Row("margin -1", ["--margin=-1"], 2,
        r"^train: error: --margin=-1\.0: must be a number > 0", "refused"),
    Row("margin 0", ["--margin=0"], 2, r"^train: error: --margin=0\.0: must be a number > 0",
        "refused"),
    Row("learning rate nan", ["--learning_rate=nan"], 2,
        r"^train: error: --learning_rate=nan: must be in \(0, 1\] for --optimizer=adam$",
        "refused"),
    Row("learning rate negative", ["--learning_rate=-0.1"], 2,
        r"^train: error: --learning_rate=-0\.1: must be in \(0, 1\]", "refused"),
    Row("learning rate huge, adam", ["--learning_rate=1e3"], 2,
        r"^train: error: --learning_rate=1000\.0: must be in \(0, 1\] for --optimizer=adam",
        "refused"),
    Row("learning rate huge, sgd", ["--optimizer=sgd", "--learning_rate=100"], 2,
        r"^train: error: --learning_rate=100\.0: must be in \(0, 10\] for --optimizer=sgd",
        "refused"),
    Row("learning rate inf", ["--learning_rate=inf"], 2,
        r"^train: error: --learning_rate=inf: must be in", "refused"),
    Row("train steps 0", ["--train_steps=0"], 2,
        r"^train: error: --train_steps=0: must be an integer >= 1$", "refused"),
    Row("train steps not a number", ["--train_steps=abc"], 2,
        r"^train: error: flag --train_steps=abc: invalid literal for int\(\)", "refused"),
    Row("batch size 0", ["--batch_size=0"], 2,
        r"^train: error: --batch_size=0: must be an integer >= 1$", "refused"),
    Row("drop rate above 1", ["--drop_rate=2"], 2,
        r"^train: error: --drop_rate=2\.0: must be a number in \[0, 1\]$", "refused"),
    Row("seed negative", ["--seed=-1"], 2,
        r"^train: error: --seed=-1: must be an integer in \[0, 2\*\*32\)$", "refused"),
    Row("worker timeout 0", ["--worker_timeout_s=0"], 2,
        r"^train: error: --worker_timeout_s=0\.0: must be a number of seconds > 0$", "refused"),
    Row("unknown loss", ["--loss=hinge"], 2, r"^train: error: flag --loss=hinge: value should be",
        "refused"),
    Row("triplet loss on a classifier head", ["--loss=triplet"], 2,
        r"^train: error: --loss=triplet trains an embedding: use --head=embedding", "refused"),
    Row("model_dir is a file", ["--model_dir={tmp}/a_file"], 2,
        r"^train: error: flag --model_dir=.*a_file: names a file; give a folder", "refused"),
    Row("missing data folder", ["--dataset=folder", "--data_dir={tmp}/nowhere",
                                "--model_dir={tmp}/m1"], 1, r"^train: error: .*nowhere",
        "refused"),
    Row("cub without its files", ["--dataset=cub", "--data_dir={tmp}/empty",
                                  "--model_dir={tmp}/m2"], 1, r"^train: error: .*empty",
        "refused"),
    Row("multi_worker without TF_CONFIG", ["--strategy=multi_worker", "--model_dir={tmp}/m3"],
        1, r"^train: error: --strategy=multi_worker needs the TF_CONFIG environment variable",
        "refused", {"TF_CONFIG": ""}),
    Row("TF_CONFIG not JSON", ["--strategy=multi_worker", "--model_dir={tmp}/m4"], 1,
        r"^train: error: TF_CONFIG='\{cluster' is not a cluster spec with this task",
        "refused", {"TF_CONFIG": "{cluster"}),
    Row("leader waits for an unreachable worker",
        ["--strategy=multi_worker", "--worker_timeout_s=2", "--model_dir={tmp}/m5"], 1,
        rf"^train: error: --strategy=multi_worker: waited 2 s \(--worker_timeout_s\) for "
        rf"worker 1 at 127\.0\.0\.1:{LEADER_PORTS[1]}: not reached", "refused",
        {"TF_CONFIG": _tf_config(0, LEADER_PORTS)}),
    Row("worker waits for an unreachable leader",
        ["--strategy=multi_worker", "--worker_timeout_s=2", "--model_dir={tmp}/m6"], 1,
        rf"^train: error: --strategy=multi_worker: waited 2 s \(--worker_timeout_s\) for the "
        rf"leader, worker 0 at 127\.0\.0\.1:{WORKER_PORTS[0]}: not reached", "refused",
        {"TF_CONFIG": _tf_config(1, WORKER_PORTS)}),
    # A TF_CONFIG left in the shell (of a non-chief worker) does not matter
    # to a one-machine strategy: the run still saves its model.
    Row("resume after Ctrl-C, skipping a bad image", TRAIN + ["--model_dir={tmp}/run",
                                                             "--skip_bad_images"], 0,
        r"done: step 4", "works", {"TF_CONFIG": _tf_config(1, WORKER_PORTS)}),
]
# Lines a row's stderr must also hold (the one-line rule is checked on all).
EXTRA_LINES = {
    "leader waits for an unreachable worker": (
        r"^waiting for workers \(TF_CONFIG task worker 0: worker hosts worker 0 "
        r"127\.0\.0\.1:\d+, worker 1 127\.0\.0\.1:\d+; up to 2 s",),
    "resume after Ctrl-C, skipping a bad image": (
        r"^resumed from .*ckpt-2 at step 2$", r"skipping bad example: .*broken\.png"),
}

# bin/train paused by Ctrl-C right after its checkpoint 2 (of 4).
_CTRL_C_AFTER_CHECKPOINT_2 = """
import os, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started in the background
from tfcaf.training import loop
save = loop.Trainer.save_checkpoint
def save_then_interrupt(self, step):
    save(self, step)
    if step == 2:
        os.kill(os.getpid(), signal.SIGINT)
loop.Trainer.save_checkpoint = save_then_interrupt
from tfcaf.cli.launch import run
run("train", ["train"] + sys.argv[1:])
"""


def _image_folder(root):
    """Two classes of four 32x32 PNGs, and one corrupt PNG."""
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(4):
            pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    (root / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not a png")


def _env():
    env = dict(os.environ, TFCAF_NO_VENV_SWITCH="1", TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("TFCAF_DEBUG", None)
    return env


@pytest.fixture(scope="module")
def train_outcomes(tmp_path_factory):
    """{row name: Outcome} of TRAIN_ROWS, and the Ctrl-C run before them."""
    tmp = tmp_path_factory.mktemp("train_bad_inputs")
    (tmp / "bad.flags").write_text("--no_such_flag=1\n")
    _image_folder(tmp / "data")
    (tmp / "a_file").write_text("")
    (tmp / "empty").mkdir()
    fill = lambda argv: [a.format(tmp=tmp, data=tmp / "data") for a in argv]
    interrupted = subprocess.run(
        [sys.executable, "-c", _CTRL_C_AFTER_CHECKPOINT_2,
         *fill(TRAIN + ["--model_dir={tmp}/run", "--skip_bad_images"])],
        capture_output=True, text=True, env=_env(), timeout=300)
    cases = [Case(r.name, fill(r.argv), timeout_s=60, env=r.env) for r in TRAIN_ROWS]
    return interrupted, tmp, run_cases("train", cases, cwd=tmp)


@pytest.fixture(scope="module")
def common_outcomes(tmp_path_factory):
    """{program: {row name: Outcome}} of COMMON_ROWS but train's."""
    tmp = tmp_path_factory.mktemp("common_bad_inputs")
    (tmp / "bad.flags").write_text("--no_such_flag=1\n")
    return {program: run_cases(program, [Case(r.name, r.argv, timeout_s=60)
                                         for r in COMMON_ROWS[program]], cwd=tmp)
            for program in PROGRAMS if program != "train"}


def _check(row, outcome):
    assert outcome.status == row.status, (outcome.status, outcome.stderr[-3000:])
    assert "Traceback" not in outcome.stderr, outcome.stderr[-3000:]
    if row.verdict == "works":
        assert re.search(row.pattern, outcome.stdout, re.M), outcome.stdout[-2000:]
        return
    assert re.search(row.pattern, outcome.last_line), outcome.stderr[-3000:]
    # One line: nothing else on stderr mentions an error.
    errors = [line for line in outcome.stderr.splitlines() if "error" in line.lower()]
    assert errors == [outcome.last_line], outcome.stderr[-3000:]


@pytest.mark.parametrize("row", TRAIN_ROWS, ids=lambda r: r.name)
def test_train(row, train_outcomes):
    _, tmp, outcomes = train_outcomes
    outcome = outcomes[row.name]
    _check(row, outcome)
    for line in EXTRA_LINES.get(row.name, ()):
        assert re.search(line, outcome.stderr, re.M), outcome.stderr[-3000:]
    if row.status != 0:  # a refused start leaves no folder behind
        assert not any((tmp / f"m{i}").exists() for i in range(1, 7))


def test_train_ctrl_c_ends_in_one_line_and_the_same_command_resumes(train_outcomes):
    interrupted, tmp, outcomes = train_outcomes
    assert interrupted.returncode == 130, interrupted.stderr[-3000:]
    assert interrupted.stderr.strip().splitlines()[-1] == (
        "train: error: interrupted at step 2; resume with the same command; "
        "it restarts from ckpt-2"), interrupted.stderr[-3000:]
    assert "Traceback" not in interrupted.stderr
    resumed = outcomes["resume after Ctrl-C, skipping a bad image"]
    assert resumed.status == 0, resumed.stderr[-3000:]
    assert (tmp / "run" / "model.keras").is_file()
    assert sorted(os.listdir(tmp / "run" / "checkpoints"))[-1].startswith("ckpt-4")


@pytest.mark.parametrize("program,row", [(p, r) for p in PROGRAMS if p != "train"
                                         for r in COMMON_ROWS[p]],
                         ids=lambda x: x if isinstance(x, str) else x.name)
def test_every_program(program, row, common_outcomes):
    _check(row, common_outcomes[program][row.name])


@pytest.mark.parametrize("program", ("train", "visualize"))
def test_fresh_checkout_without_dependencies_says_make_install(program):
    # `python -S` sees no site-packages: as a system python without absl
    # in a checkout with no .venv yet.
    proc = subprocess.run([sys.executable, "-S", os.path.join(REPO, "bin", program), "--help"],
                          capture_output=True, text=True, env=_env(), timeout=60)
    assert proc.returncode == 2
    assert re.fullmatch(
        rf"{program}: error: absl, .* not installed for {re.escape(sys.executable)}; run "
        rf"`make install` in {re.escape(REPO)} first \(it creates \.venv, which "
        rf"bin/{program} then uses\)\n", proc.stderr), proc.stderr
    assert proc.stdout == ""

