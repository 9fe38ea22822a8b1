"""bin/train with flags/digits_acol.flags: ACoL trains through
`ACoLModel.train_step` (the one ACoL training path) and both branches learn."""

import glob
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _scalars(event_dir):
    """{tag: {step: value}} of the TensorBoard scalars in `event_dir`."""
    series = {}
    for path in glob.glob(os.path.join(event_dir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                series.setdefault(value.tag, {})[event.step] = float(
                    tf.make_ndarray(value.tensor))
    return series


@pytest.mark.slow
def test_acol_flagfile_trains_both_branches(tmp_path, digits_dir):
    # The flagfile's model, shrunk to a CPU test: 32 px, narrow branches.
    cmd = [sys.executable, os.path.join(REPO, "bin", "train"),
           f"--flagfile={os.path.join(REPO, 'flags', 'digits_acol.flags')}",
           f"--data_dir={digits_dir}", f"--model_dir={tmp_path / 'acol'}",
           "--image_size=32", "--acol_filters=16", "--batch_size=16", "--train_steps=16",
           "--log_every=4", "--checkpoint_every=16", "--val_examples=16",
           "--summary_images=0", "--learning_rate=0.003"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, TFCAF_NO_VENV_SWITCH="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "done: step 16" in proc.stdout
    logged = _scalars(str(tmp_path / "acol" / "train"))
    steps = [4, 8, 12, 16]
    for tag in ("loss", "loss_a", "loss_b"):
        assert sorted(logged[tag]) == steps, logged.keys()
    loss, a, b = (np.array([logged[t][s] for s in steps]) for t in ("loss", "loss_a", "loss_b"))
    # The step's objective is CE(A) + CE(B), each branch's CE starting near
    # log(10) (10 digit classes, random init), and both move with training.
    np.testing.assert_allclose(loss, a + b, rtol=1e-5)
    for branch in (a, b):
        assert np.all(np.isfinite(branch)) and 1.0 < branch[0] < 4.0
        assert np.ptp(branch) > 1e-3
