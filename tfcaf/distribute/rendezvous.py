"""Meeting the other workers of a multi-worker run, with a deadline, before
TensorFlow does.

`tf.distribute.MultiWorkerMirroredStrategy()` blocks until every chief and
worker task of TF_CONFIG has registered with the coordination leader: with
no timeout, no word, holding the GIL (so no Python thread or signal handler
can end it) and ignoring SIGTERM. So the workers meet here first, in plain
Python: the leader listens on its own TF_CONFIG port, every other task
connects to it and names itself, and once all have, the leader answers
"go" to each and closes its socket; TensorFlow then binds the port. A task
that cannot be reached within the deadline is named in one line. Imports no
TensorFlow.
"""

import json
import logging
import os
import socket
import time

from tfcaf.errors import TfcafError

log = logging.getLogger("tfcaf.distribute")

# The jobs MultiWorkerMirroredStrategy coordinates, the leader's first.
_JOBS = ("chief", "worker")
_POLL_S = 0.2


def tf_config():
    """(cluster {job: [host:port, ...]}, (task type, index)) of TF_CONFIG."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise TfcafError("--strategy=multi_worker needs the TF_CONFIG environment variable "
                         "(cluster spec and this worker's task)")
    try:
        spec = json.loads(text)
        cluster, task = spec["cluster"], spec["task"]
        me = (task["type"], int(task["index"]))
        tasks = [(job, i, addr) for job in _JOBS for i, addr in enumerate(cluster.get(job, ()))]
        if me not in [(job, i) for job, i, _ in tasks]:
            raise KeyError(f"task {me[0]} {me[1]}")
        for _, _, addr in tasks:
            _host_port(addr)
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise TfcafError(f"TF_CONFIG={text!r} is not a cluster spec with this task "
                         f"({type(err).__name__}: {err}); see "
                         f"https://www.tensorflow.org/guide/distributed_training") from None
    return tasks, me


def _host_port(addr):
    host, sep, port = str(addr).rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"{addr!r} is not host:port")
    return host, int(port)


def _name(job, index):
    return f"{job} {index}"


def meet_workers(timeout_s):
    """Returns once every chief/worker task of TF_CONFIG is up and about to
    build the strategy (at once for a one-task cluster).

    Args:
        timeout_s: seconds to wait for the other tasks.

    Raises:
        TfcafError: bad TF_CONFIG, or tasks not reached within `timeout_s`
            (the message names their hosts).
    """
    tasks, me = tf_config()
    if len(tasks) == 1:
        return
    hosts = ", ".join(f"{_name(job, i)} {addr}" for job, i, addr in tasks)
    log.info("waiting for workers (TF_CONFIG task %s: worker hosts %s; up to %g s, "
             "--worker_timeout_s)", _name(*me), hosts, timeout_s)
    deadline = time.monotonic() + timeout_s
    leader = tasks[0]
    if me == leader[:2]:
        others = {_name(job, i): addr for job, i, addr in tasks[1:]}
        _lead(_host_port(leader[2])[1], others, deadline, timeout_s)
    else:
        _join(leader, _name(*me), deadline, timeout_s)
    log.info("all %d workers up", len(tasks))


def _lead(port, others, deadline, timeout_s):
    """The leader: waits for every one of `others` ({name: addr}) to check in,
    then tells each to go."""
    try:
        server = socket.create_server(("", port))
    except OSError as err:
        raise TfcafError(f"TF_CONFIG: this task's port {port} is not free ({err.strerror}); "
                         f"another process holds it") from None
    joined = {}
    try:
        server.settimeout(_POLL_S)
        while len(joined) < len(others):
            if time.monotonic() > deadline:
                missing = ", ".join(f"{n} at {a}" for n, a in others.items() if n not in joined)
                raise TfcafError(f"--strategy=multi_worker: waited {timeout_s:g} s "
                                 f"(--worker_timeout_s) for {missing}: not reached; start "
                                 f"bin/train there with the same TF_CONFIG cluster")
            try:
                conn, _ = server.accept()
            except socket.timeout:
                continue
            name = _read_line(conn, min(deadline, time.monotonic() + 5))
            if name in others:
                if name in joined:  # that worker restarted
                    joined[name].close()
                joined[name] = conn
            else:
                conn.close()
        for conn in joined.values():
            try:
                conn.sendall(b"go\n")
            except OSError:  # it died after checking in: TensorFlow will wait for it
                pass
        for conn in joined.values():  # their close first: the port is free for TF
            _read_line(conn, time.monotonic() + 10)
    finally:
        for conn in joined.values():
            conn.close()
        server.close()


def _join(leader, name, deadline, timeout_s):
    """A non-leader task: checks in with the leader until it says go."""
    job, index, addr = leader
    connected = False  # on the last try
    while time.monotonic() <= deadline:
        connected = False
        try:
            with socket.create_connection(_host_port(addr), timeout=_POLL_S * 5) as conn:
                connected = True
                conn.sendall(f"{name}\n".encode())
                if _read_line(conn, deadline) == "go":
                    return
        except OSError:
            pass
        time.sleep(_POLL_S)
    why = ("it accepted the connection but did not answer (not a bin/train of this "
           "cluster?)" if connected else "not reached")
    raise TfcafError(f"--strategy=multi_worker: waited {timeout_s:g} s (--worker_timeout_s) "
                     f"for the leader, {_name(job, index)} at {addr}: {why}; start bin/train "
                     f"there with the same TF_CONFIG cluster")


def _read_line(conn, deadline):
    """One line from `conn` ('' on EOF, error or `deadline`)."""
    data = b""
    try:
        while not data.endswith(b"\n"):
            conn.settimeout(max(deadline - time.monotonic(), 0.01))
            chunk = conn.recv(64)
            if not chunk:
                break
            data += chunk
    except OSError:
        return ""
    return data.decode(errors="replace").strip()


def local_ports(count):
    """`count` free TCP ports of 127.0.0.1: a TF_CONFIG cluster of local
    processes (trying multi-worker on one machine, the tests, bench/)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()
