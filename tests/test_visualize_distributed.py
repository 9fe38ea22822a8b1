"""bin/visualize under tf.distribute writes the maps of a one-device run,
exactly: a mirrored strategy on 2 logical CPUs and 2 local workers
(TF_CONFIG) sharing one --out_dir, 5 batches of L2-CAF, so that one
replica and one worker get a batch fewer; the chief lists every file as
the run's, and `tfcaf.read_maps` reads them back."""

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

import tfcaf
from local_cluster import run_workers

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COUNT = 9


def _command(model, folder, out, *extra):
    return [sys.executable, os.path.join(REPO, "bin", "visualize"), f"--model={model}",
            f"--images={folder}/*.png", f"--out_dir={out}", "--method=l2caf",
            "--batch_size=2", "--iterations=40", *extra]



@pytest.fixture(scope="module")
def images_and_maps(tiny_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for k in range(COUNT):
        cv2.imwrite(str(folder / f"im{k:02d}.png"), rng.integers(0, 255, (32, 32, 3), np.uint8))
    out = tmp_path_factory.mktemp("one_device") / "maps"
    run = subprocess.run(_command(tiny_model, folder, out), capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return folder, tfcaf.read_maps(out)


def _assert_same_maps(got, expected):
    assert list(got) == list(expected) and len(got) == COUNT
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


# Slow: the replicas' threads are those of tests/test_evaluate_distributed.py.
@pytest.mark.slow
def test_mirrored_on_two_logical_cpus_writes_the_same_maps(images_and_maps, tiny_model,
                                                           tmp_path):
    folder, expected = images_and_maps
    out = tmp_path / "maps"
    run = subprocess.run(_command(tiny_model, folder, out, "--strategy=mirrored",
                                  "--logical_cpus=2"), capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "worker 0 of 1, 2 replica(s)" in run.stderr
    assert f"wrote {2 * COUNT} files to {out}" in run.stdout
    _assert_same_maps(tfcaf.read_maps(out), expected)


@pytest.mark.slow
def test_two_local_workers_write_the_same_maps_into_one_folder(images_and_maps, tiny_model,
                                                               tmp_path):
    folder, expected = images_and_maps
    out = tmp_path / "maps"
    logs = run_workers(_command(tiny_model, folder, out))
    assert "3 of the 5 batches" in logs[0][1] and "2 of the 5 batches" in logs[1][1]
    assert f"wrote {2 * COUNT} files to {out}" in logs[0][0]
    assert "the chief lists the run" in logs[1][0]
    _assert_same_maps(tfcaf.read_maps(out), expected)
    assert not [name for name in os.listdir(out) if name.startswith(".tfcaf_visualize_worker")]
