"""bin/train end to end: resume after SIGKILL, MirroredStrategy on 2 logical
CPUs, and MultiWorkerMirroredStrategy with two local processes."""

import json
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfcaf import applications
from tfcaf.distribute.rendezvous import local_ports

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(REPO, "bin", "train")
# Tiny but real: the embedded digits at 32 px, a narrow tiny_resnet.
COMMON = ["--dataset=digits", "--image_size=32", "--batch_size=8", "--log_every=2",
          "--val_examples=16", "--summary_images=1", "--lr_schedule=constant",
          "--learning_rate=0.01", "--noaugment"]


@pytest.fixture
def data_dir(digits_dir):
    return digits_dir


def _command(model_dir, data_dir, *extra):
    return [sys.executable, BIN, *COMMON, f"--data_dir={data_dir}",
            f"--model_dir={model_dir}", *extra]


def _env(**extra):
    return dict(os.environ, TFCAF_NO_VENV_SWITCH="1", **extra)


def _run(cmd, **kwargs):
    proc = subprocess.run(cmd, capture_output=True, text=True, env=kwargs.pop("env", _env()),
                          timeout=600, **kwargs)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _checkpoint_step(model_dir):
    """(checkpoint number, optimizer iterations) of the latest checkpoint."""
    path = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    reader = tf.train.load_checkpoint(path)
    key = [k for k in reader.get_variable_to_shape_map() if k.startswith("optimizer/")
           and "iteration" in k][0]
    return int(path.rsplit("-", 1)[1]), int(reader.get_tensor(key))


def _weights(model_dir):
    model = applications.load_model(os.path.join(model_dir, "model.keras"))
    return model.get_weights()


# bin/train that stops, alive, right after saving checkpoint `step`: tests
# kill or interrupt it in that known state instead of racing a running loop.
_WAIT_AFTER_CHECKPOINT = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started in the background
from tfcaf.training import loop
save = loop.Trainer.save_checkpoint
def save_then_wait(self, step):
    save(self, step)
    if step == {step}:
        print("checkpointed", step, flush=True)
        time.sleep(600)
loop.Trainer.save_checkpoint = save_then_wait
from tfcaf.cli.launch import run
run("train", ["train"] + sys.argv[1:])
"""


def _start_waiting_run(model_dir, data_dir, step, *extra):
    """Popen of a run paused after checkpoint `step` (returns once there)."""
    script = _WAIT_AFTER_CHECKPOINT.format(step=step)
    cmd = [sys.executable, "-c", script] + _command(model_dir, data_dir, *extra)[2:]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    line = proc.stdout.readline()  # blocks until the checkpoint is saved
    if line.strip() != f"checkpointed {step}":
        proc.kill()
        raise AssertionError(f"the run did not reach checkpoint {step}: "
                             f"{proc.communicate()[1][-3000:]}")
    return proc


@pytest.mark.slow
@pytest.mark.parametrize("head", ["classifier", "adl"])
def test_killed_run_resumes_to_the_exact_step_and_weights(tmp_path, data_dir, head):
    # ADL's random drop/importance choice is part of the checkpoint too.
    steps = ["--train_steps=12", "--checkpoint_every=4", f"--head={head}"]
    straight = tmp_path / "straight"
    _run(_command(straight, data_dir, *steps))
    killed = tmp_path / "killed"
    proc = _start_waiting_run(killed, data_dir, 4, *steps)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert not (killed / "model.keras").exists()
    resumed = _run(_command(killed, data_dir, *steps))
    assert "resumed from" in resumed.stderr
    assert _checkpoint_step(str(killed)) == (12, 12)
    for a, b in zip(_weights(straight), _weights(killed)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_second_run_is_refused_and_ctrl_c_says_how_to_resume(tmp_path, data_dir):
    model_dir = tmp_path / "busy"
    steps = ["--train_steps=8", "--checkpoint_every=2"]
    first = _start_waiting_run(model_dir, data_dir, 2, *steps)
    second = subprocess.run(_command(model_dir, data_dir, *steps), capture_output=True,
                            text=True, env=_env(), timeout=300)
    assert second.returncode == 1
    assert second.stderr.strip().splitlines()[-1].startswith(
        f"train: error: --model_dir={model_dir} is in use by another bin/train run "
        f"(pid {first.pid} on host {socket.gethostname()}, started "), second.stderr[-2000:]
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 130
    assert err.strip().splitlines()[-1] == (
        "train: error: interrupted at step 2; resume with the same command; "
        "it restarts from ckpt-2"), err[-2000:]
    assert "Traceback" not in err
    assert sorted(os.listdir(model_dir)) == [
        "checkpoints", "train", "train.lock", "train_config.json", "validation"]
    from tfcaf.training.model_dir import RunLock
    with RunLock(str(model_dir)):  # the interrupted run left it unlocked
        pass


def test_model_dir_that_is_a_file_is_named(tmp_path):
    from tfcaf.errors import TfcafError
    from tfcaf.training.model_dir import RunLock
    (tmp_path / "f").write_text("")
    with pytest.raises(TfcafError, match=f"--model_dir={tmp_path / 'f'} is an existing file"):
        RunLock(str(tmp_path / "f")).acquire()


def test_bad_flags_fail_before_any_work(tmp_path, data_dir):
    proc = subprocess.run(_command(tmp_path / "bad", data_dir, "--head=embedding",
                                   "--loss=npairs", "--batch_size=12", "--train_steps=2"),
                          capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("train: error: --loss=npairs --batch_size=12"), proc.stderr[-2000:]
    assert "6 classes" in last
    assert not (tmp_path / "bad").exists()  # a failed start leaves no folder


@pytest.mark.slow
def test_mirrored_on_two_logical_cpus(tmp_path, data_dir):
    model_dir = tmp_path / "mirrored"
    proc = _run(_command(model_dir, data_dir, "--strategy=mirrored", "--logical_cpus=2",
                         "--head=embedding", "--loss=triplet", "--images_per_class=2",
                         "--train_steps=4", "--checkpoint_every=2"))
    assert "done: step 4" in proc.stdout
    assert _checkpoint_step(str(model_dir)) == (4, 4)
    assert (model_dir / "model.keras").exists()



@pytest.mark.slow
def test_multi_worker_with_two_local_processes(tmp_path, data_dir):
    model_dir = tmp_path / "multi"
    workers = [f"127.0.0.1:{p}" for p in local_ports(2)]
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers},
                                "task": {"type": "worker", "index": index}})
        procs.append(subprocess.Popen(
            _command(model_dir, data_dir, "--strategy=multi_worker", "--train_steps=4",
                     "--checkpoint_every=2"),
            env=_env(TF_CONFIG=tf_config), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True))
    outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-3000:]
        assert "done: step 4" in out
    assert _checkpoint_step(str(model_dir)) == (4, 4)
    assert (model_dir / "model.keras").exists()
    assert sorted(os.listdir(model_dir)) == ["checkpoints", "model.keras", "train", "train.lock",
                                          "train_config.json", "validation"]


def test_workers_meet_then_the_leader_port_is_free_for_tensorflow():
    import threading
    import time

    from tfcaf.distribute import rendezvous
    port, worker_port = local_ports(2)
    deadline = time.monotonic() + 20
    leader = threading.Thread(target=rendezvous._lead, args=(
        port, {"worker 1": f"127.0.0.1:{worker_port}"}, deadline, 20))
    leader.start()
    started = time.monotonic()
    rendezvous._join(("worker", 0, f"127.0.0.1:{port}"), "worker 1", deadline, 20)
    leader.join(timeout=20)
    assert not leader.is_alive()
    assert time.monotonic() - started < 5
    # TensorFlow's server binds the leader's port next.
    with socket.create_server(("", port)):
        pass
