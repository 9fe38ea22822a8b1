"""bin/evaluate under tf.distribute gives the metrics.json numbers of a
one-device run, exactly: a mirrored strategy on 2 logical CPUs and a local
2-worker MultiWorkerMirroredStrategy (TF_CONFIG), on 5 batches, so that one
replica and one worker get a batch fewer than the other."""

import json
import os
import subprocess
import sys

import pytest

from local_cluster import run_workers

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METRICS = "iou,maxboxacc,pxap,deletion,average_drop"


def _command(model, digits_dir, out, *extra):
    return [sys.executable, os.path.join(REPO, "bin", "evaluate"), f"--model={model}",
            f"--data_dir={digits_dir}", "--image_size=32", "--max_images=10",
            "--batch_size=2", "--methods=gradcam,l2caf", "--iterations=30",
            f"--metric={METRICS}", f"--out_dir={out}", *extra]


def _summary(out):
    with open(os.path.join(out, "metrics.json")) as f:
        return json.load(f)


def _numbers(out):
    return {key: _summary(out)[key] for key in ("methods", "images", "degenerate_maps",
                                                "undefined_values", "top1_accuracy")}



@pytest.fixture(scope="module")
def one_device(tiny_model, digits_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("one_device") / "eval"
    run = subprocess.run(_command(tiny_model, digits_dir, out), capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert _summary(out)["settings"]["devices"] == {"strategy": "default", "replicas": 1}
    return _numbers(out)


@pytest.mark.slow
def test_mirrored_on_two_logical_cpus_equals_one_device(one_device, tiny_model, digits_dir,
                                                        tmp_path):
    out = tmp_path / "eval"
    run = subprocess.run(_command(tiny_model, digits_dir, out, "--strategy=mirrored",
                                  "--logical_cpus=2"), capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "worker 0 of 1, 2 replica(s)" in run.stderr and "5 of the 5 batches" in run.stderr
    assert _numbers(out) == one_device
    assert _summary(out)["settings"]["devices"] == {"strategy": "mirrored", "replicas": 2}
    assert "- Devices: --strategy=mirrored, 2 replica(s)" in \
        (out / "report.md").read_text()


def test_two_local_workers_equal_one_device(one_device, tiny_model, digits_dir, tmp_path):
    out = tmp_path / "eval"
    logs = run_workers(_command(tiny_model, digits_dir, out))
    assert "worker 0 of 2" in logs[0][1] and "3 of the 5 batches" in logs[0][1]
    assert "worker 1 of 2" in logs[1][1] and "2 of the 5 batches" in logs[1][1]
    assert "the chief writes the report" in logs[1][0]
    assert _numbers(out) == one_device
    assert _summary(out)["settings"]["devices"] == {"strategy": "multi_worker",
                                                    "replicas": 2}
