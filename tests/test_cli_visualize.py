"""bin/visualize end to end on a tiny model saved as .keras."""

import os
import subprocess
import sys

import cv2
import keras
import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(REPO, "bin", "visualize")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    path = tmp_path_factory.mktemp("visualize")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((24, 24, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu",
                            name="last_conv")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x)).save(
        str(path / "tiny.keras"))
    rng = np.random.default_rng(0)
    for k in range(3):
        cv2.imwrite(str(path / f"img{k}.png"), rng.integers(0, 255, (30, 40, 3), np.uint8))
    (path / "broken.png").write_bytes(b"not an image")
    return path


def _run(workdir, *args):
    env = dict(os.environ, TFCAF_NO_VENV_SWITCH="1")
    return subprocess.run([sys.executable, BIN, f"--model={workdir / 'tiny.keras'}", *args],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=300)


def test_writes_panels_maps_and_gif(workdir):
    out = workdir / "out"
    proc = _run(workdir, f"--images={workdir}/img*.png", f"--out_dir={out}", "--gif",
                "--iterations=60", "--gif_every=20")
    assert proc.returncode == 0, proc.stderr
    for k in range(3):
        panel = cv2.imread(str(out / f"img{k}.png"))
        # A 30x40 image is shown at 384x512 (short side 384, own aspect
        # ratio): a title strip above, three panels and a colour bar.
        assert 384 + 20 < panel.shape[0] < 384 + 80, panel.shape
        assert 3 * 512 < panel.shape[1] < 3 * 512 + 150, panel.shape
        raw = np.load(out / f"img{k}.npy")
        assert raw.shape == (12, 12)
        np.testing.assert_allclose(np.sqrt((raw ** 2).sum()), 1.0, rtol=1e-5)
        assert (out / f"img{k}.gif").stat().st_size > 0
    assert "[3/3] images explained" in proc.stderr


def test_class_specific_with_several_targets(workdir):
    out = workdir / "targets"
    proc = _run(workdir, f"--images={workdir}/img0.png", f"--out_dir={out}",
                "--method=l2caf_specific", "--targets=0,2", "--iterations=60")
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(out)) == ["img0_t0.npy", "img0_t0.png", "img0_t2.npy", "img0_t2.png"]


@pytest.mark.parametrize("args,message", [
    (["--images=missing.png"], "image 'missing.png' does not exist"),
    (["--images=broken.png"], "broken.png"),
    (["--images=img0.png", "--layer=nope"], "has no layer 'nope'"),
    (["--images=img0.png", "--method=cam", "--targets=5"], "class ids in [0, 3)"),
])
def test_bad_input_gives_one_clear_error_line(workdir, args, message):
    proc = _run(workdir, *args)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("visualize: error:") and message in last, proc.stderr
