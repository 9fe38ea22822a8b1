"""A multi-worker run of one of the binaries as local processes (TF_CONFIG
on 127.0.0.1), for the tests of `--strategy=multi_worker`."""

import json
import os
import subprocess

from tfcaf.distribute.rendezvous import local_ports


def run_workers(command, count=2, timeout=400):
    """Runs `command` (argv) as worker 0 .. `count` - 1 of one local cluster
    at once; returns each worker's (stdout, stderr), once every one has
    ended with status 0 (else the assertion shows the failing one's log)."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in local_ports(count)]}
    workers = [subprocess.Popen(
        command + ["--strategy=multi_worker", "--worker_timeout_s=120"],
        env={**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster,
                                                    "task": {"type": "worker", "index": i}})},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(count)]
    logs = [worker.communicate(timeout=timeout) for worker in workers]
    for worker, (_, stderr) in zip(workers, logs):
        assert worker.returncode == 0, stderr[-3000:]
    return logs
