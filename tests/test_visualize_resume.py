"""A `bin/visualize` run SIGKILLed half-way and run again with the same
command explains only the images it had not finished, says how many it
reused, and ends with the maps an uninterrupted run writes."""

import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

import tfcaf
from tfcaf.errors import TfcafError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COUNT = 12


def _command(model, folder, out):
    return [sys.executable, os.path.join(REPO, "bin", "visualize"), f"--model={model}",
            f"--images={folder}/*.png", f"--out_dir={out}", "--method=l2caf",
            "--batch_size=2", "--iterations=300"]


def _maps(out):
    return {name: np.load(out / name) for name in sorted(os.listdir(out))
            if name.endswith(".npy")}


@pytest.mark.slow
def test_sigkilled_visualize_resumes_with_the_same_maps(tiny_model, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k in range(COUNT):
        cv2.imwrite(str(folder / f"im{k:02d}.png"), rng.integers(0, 255, (32, 32, 3), np.uint8))
    whole = tmp_path / "whole"
    assert subprocess.run(_command(tiny_model, folder, whole), capture_output=True,
                          timeout=300).returncode == 0
    out = tmp_path / "killed"
    process = subprocess.Popen(_command(tiny_model, folder, out), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while len(_maps(out) if out.exists() else {}) < 4 and time.time() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = len(_maps(out))
    resumed = subprocess.run(_command(tiny_model, folder, out), capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"of {COUNT} images already explained" in resumed.stderr, resumed.stderr[-2000:]
    reused = int(resumed.stderr.split("resuming: ")[1].split(" of ")[0])
    assert done - 1 <= reused <= done  # an image is reused once its .png and .npy are both on disk
    assert f"wrote {2 * COUNT} files to {out}" in resumed.stdout
    expected, got = _maps(whole), tfcaf.read_maps(out)  # the maps back in one call
    assert [f"{name}.npy" for name in got] == list(expected)
    for name, value in got.items():
        np.testing.assert_allclose(value, expected[f"{name}.npy"], rtol=1e-5, atol=1e-6,
                                   err_msg=name)


def test_read_maps_needs_a_tfcaf_output_folder(tmp_path):
    np.save(tmp_path / "stray.npy", np.zeros((2, 2)))
    with pytest.raises(TfcafError, match="holds no files of a tfcaf run"):
        tfcaf.read_maps(str(tmp_path))
