"""A `bin/evaluate` run killed with SIGKILL, twice, at random batches, and run
again with the same command resumes: it says how many images it reused and
ends with the metrics.json of an uninterrupted run. An unfinished run with
other settings in the same --out_dir is refused (--overwrite starts afresh)."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tfcaf.evaluation.resume import partial_folder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGES, BATCH = 24, 2


def _command(model, digits_dir, out, *extra):
    return [sys.executable, os.path.join(REPO, "bin", "evaluate"), f"--model={model}",
            f"--data_dir={digits_dir}", "--image_size=32", f"--max_images={IMAGES}",
            f"--batch_size={BATCH}", "--methods=gradcam,l2caf", "--iterations=200",
            "--metric=iou,maxboxacc,pxap,deletion,average_drop", f"--out_dir={out}", *extra]


def _shards(out):
    """Batches on disk in the run's partial folder (one subfolder per
    identity)."""
    return sum(name.startswith("batch-") for _, _, names in os.walk(partial_folder(out))
               for name in names)


def _kill_after(command, shards, out):
    """Starts `command` and SIGKILLs it once `shards` shards are on disk."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.time() + 240
    while _shards(out) < shards and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()


def _run(command):
    run = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return run


@pytest.mark.slow
def test_sigkilled_twice_then_resumed_equals_an_uninterrupted_run(tiny_model, digits_dir,
                                                                  tmp_path):
    whole = tmp_path / "whole"
    _run(_command(tiny_model, digits_dir, whole))
    out = tmp_path / "killed"
    rng = np.random.default_rng(7)
    first = int(rng.integers(2, 5))
    second = int(rng.integers(first + 2, first + 5))
    _kill_after(_command(tiny_model, digits_dir, out), first, out)
    assert not out.exists() and _shards(out) >= first
    _kill_after(_command(tiny_model, digits_dir, out), second, out)
    reused = _shards(out) * BATCH
    resumed = _run(_command(tiny_model, digits_dir, out))
    assert f"resuming: {reused} of {IMAGES} images reused" in resumed.stderr
    assert not os.path.exists(partial_folder(out))  # removed with the results written
    expected = json.loads((whole / "metrics.json").read_text())
    got = json.loads((out / "metrics.json").read_text())
    for key in ("methods", "degenerate_maps", "undefined_values", "images", "protocols"):
        assert got[key] == expected[key], key


@pytest.mark.slow
def test_an_unfinished_run_with_other_settings_is_refused(tiny_model, digits_dir, tmp_path):
    out = tmp_path / "other"
    _kill_after(_command(tiny_model, digits_dir, out), 1, out)
    refused = subprocess.run(_command(tiny_model, digits_dir, out, "--cam_threshold=0.3"),
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1, refused.stderr[-2000:]
    assert ("holds an unfinished run with another config.cam_threshold (was 0.2, now 0.3); "
            "run that command again to finish it, or pass --overwrite") in refused.stderr
    fresh = _run(_command(tiny_model, digits_dir, out, "--cam_threshold=0.3", "--overwrite"))
    assert "resuming" not in fresh.stderr and (out / "metrics.json").is_file()
