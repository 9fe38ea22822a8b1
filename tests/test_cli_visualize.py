"""bin/visualize end to end on a tiny model saved as .keras."""

import os
import re
import subprocess
import sys

import cv2
import keras
import numpy as np
import pytest

import tfcaf
from tfcaf.cli.visualize_runs import RUN_FILE
from tfcaf.outputs import MANIFEST

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
    (path / "empty").mkdir()
    return path


def _outputs(folder):
    """The files under `folder`, relative, without the run's record of them."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.is_file() and p.name not in (MANIFEST, RUN_FILE))


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
    assert _outputs(out) == ["img0_t0.npy", "img0_t0.png", "img0_t2.npy", "img0_t2.png"]


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


def _lines_from_native_logs(stderr):
    """TensorFlow's C++ log lines (`I0000 00:00:...`, `E0000 ...`) and its
    Python warnings: the quiet default hides them."""
    return [line for line in stderr.splitlines()
            if re.match(r"[IWEF]\d{4} ", line) or "cuInit" in line
            or line.startswith(("WARNING:tensorflow", "WARNING: All log messages"))]


def test_same_names_in_two_folders_do_not_collide_and_small_images_warn(workdir):
    for folder in ("a", "b"):
        (workdir / folder).mkdir(exist_ok=True)
        cv2.imwrite(str(workdir / folder / "x.png"), np.full((30, 40, 3), 90, np.uint8))
    cv2.imwrite(str(workdir / "a" / "x.jpg"), np.full((30, 40, 3), 40, np.uint8))
    cv2.imwrite(str(workdir / "tiny.png"), np.zeros((1, 1, 3), np.uint8))
    out = workdir / "collide"
    proc = _run(workdir, "--images=a/x.png,b/x.png,a/x.jpg,tiny.png", f"--out_dir={out}",
                "--method=gradcam")
    assert proc.returncode == 0, proc.stderr
    assert _outputs(out) == ["a/x_jpg.npy", "a/x_jpg.png", "a/x_png.npy", "a/x_png.png",
                     "b/x.npy", "b/x.png", "tiny.npy", "tiny.png"]
    assert f"wrote 8 files to {out}" in proc.stdout
    assert "image 'tiny.png' is 1x1 px" in proc.stderr
    assert _lines_from_native_logs(proc.stderr) == [], proc.stderr


def test_failure_half_way_says_what_was_written(workdir):
    out = workdir / "half"
    proc = _run(workdir, "--images=img0.png,broken.png", f"--out_dir={out}",
                "--batch_size=1", "--method=gradcam")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("visualize: error:") and "broken.png" in lines[-1]
    assert lines[-2] == (f"visualize: wrote 2 files before the error: {out}/img0.png, "
                         f"{out}/img0.npy")
    assert _outputs(out) == ["img0.npy", "img0.png"]


@pytest.mark.slow
def test_a_folder_or_a_folder_dataset_gives_its_images_but_not_the_outputs(workdir):
    # The dataset's run writes raw maps alone (--nopng), the folder's figures too.
    # Class sub-folders, so that the same folder is also a folder dataset.
    root = workdir / "photos"
    for seed, (name, stem) in enumerate((("cats", "a"), ("dogs", "a"), ("dogs", "b"))):
        (root / name).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / name / f"{stem}.png"),
                    np.random.default_rng(seed).integers(0, 255, (30, 40, 3), np.uint8))
    # Names as short as they can be without clashing (tfcaf.cli.naming).
    names = ["b", "cats/a", "dogs/a"]
    listed = _run(workdir, "--images=dataset:folder", f"--data_dir={root}",
                  f"--out_dir={workdir / 'from_dataset'}", "--method=gradcam", "--nopng")
    assert listed.returncode == 0, listed.stderr
    assert _outputs(workdir / "from_dataset") == [f"{name}.npy" for name in names]
    from_dataset = tfcaf.read_maps(workdir / "from_dataset")
    assert sorted(from_dataset) == names
    out = root / "maps"
    for _ in range(2):  # the second run must not explain the first one's figures
        proc = _run(workdir, f"--images={root}", f"--out_dir={out}", "--method=gradcam")
        assert proc.returncode == 0, proc.stderr
        assert _outputs(out) == [f"{name}.{ext}" for name in names for ext in ("npy", "png")]
    for name, value in from_dataset.items():
        np.testing.assert_array_equal(value, np.load(out / f"{name}.npy"))


@pytest.mark.parametrize("args,message", [
    (["--images=empty", "--method=cam"],
     "--images: folder 'empty' holds no image files (.jpg, .jpeg, .png, .bmp, .gif)"),
    (["--images=dataset:mnist/test", "--method=cam"],
     "--images=dataset:mnist/test: give dataset:NAME/SPLIT with NAME one of digits, cub, "
     "imagenet, folder (e.g. dataset:digits/test)"),
    (["--images=img0.png", "--method=cam", "--gif"],
     "--gif: --method=cam has no iterations to animate (methods with iterations: "
     "l2caf, l2caf_specific)"),
])
def test_rejected_before_any_output(workdir, args, message):
    out = workdir / "never"
    proc = _run(workdir, *args, f"--out_dir={out}")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == f"visualize: error: {message}", proc.stderr
    assert not out.exists()


def test_each_gif_frame_is_captioned_with_its_own_loss(workdir, monkeypatch, tmp_path):
    from tfcaf import applications, render
    from tfcaf.caf import SolverConfig
    from tfcaf.cli.heatmap_files import HeatmapWriter
    gifs = []
    monkeypatch.setattr(render, "write_gif",
                        lambda path, image, frames, captions: gifs.append((frames, captions)))
    writer = HeatmapWriter(applications.load_model(str(workdir / "tiny.keras")), "l2caf", None,
                           (24, 24), gif_every=5,
                           solver=SolverConfig(max_iterations=40, tolerance=0.0))
    explanations = []
    explain = writer.explainer.explain

    def explain_and_keep(*args, **kwargs):
        explanations.append(explain(*args, **kwargs))
        return explanations[-1]

    monkeypatch.setattr(writer.explainer, "explain", explain_and_keep)
    writer.write_batch([str(workdir / "img0.png"), str(workdir / "img1.png")],
                       [str(tmp_path / "a"), str(tmp_path / "b")], None,
                       lambda path, fn: fn(path))
    (explanation,) = explanations
    assert len(gifs) == 2
    for (frames, captions), losses in zip(gifs, explanation.snapshot_losses):
        assert len(frames) == len(captions) == 40 // 5 + 1
        shown = [float(re.search(r"\| loss (\S+)$", c).group(1)) for c in captions]
        np.testing.assert_allclose(shown[:-1], losses, rtol=1e-3)
        assert len(set(shown)) > 2  # not one loss repeated on every frame
        assert captions[3].startswith("l2caf | iteration 15 | loss ")
        assert captions[-1].startswith("l2caf | iteration 40 (final) | loss ")


def test_solver_flags_reach_the_engine(workdir):
    from PIL import Image
    out = workdir / "solver"
    proc = _run(workdir, f"--images={workdir}/img0.png", f"--out_dir={out}", "--solver=authors",
                "--restarts=2", "--seed=3", "--iterations=7", "--gif", "--gif_every=1")
    assert proc.returncode == 0, proc.stderr
    (line,) = [l for l in proc.stderr.splitlines() if "solver " in l]
    for setting in ("optimizer=adam", "restarts=2", "seed=3", "max_iterations=7", "horizon=7",
                    "init=normal", "end_learning_rate=0.0"):
        assert setting in line, line
    # The authors' rule checks every 50 iterations: all 7 run, 7 + 1 frames.
    assert Image.open(out / "img0.gif").n_frames == 8


def test_constant_maps_warn_once_with_their_count(workdir, tmp_path, caplog):
    from tfcaf import applications
    from tfcaf.cli.heatmap_files import HeatmapWriter
    # Black pixels give zero feature maps (zero biases, ReLU): a zero CAM.
    cv2.imwrite(str(tmp_path / "black.png"), np.zeros((30, 40, 3), np.uint8))
    writer = HeatmapWriter(applications.load_model(str(workdir / "tiny.keras")), "cam", None,
                           (24, 24), gif_every=0)
    for paths in ([tmp_path / "black.png", workdir / "img0.png"], [tmp_path / "black.png"]):
        writer.write_batch([str(p) for p in paths], [str(tmp_path / f"o{k}") for k in
                                                      range(len(paths))],
                           None, lambda path, fn: fn(path))
    with caplog.at_level("WARNING", logger="tfcaf.visualize"):
        writer.warn_degenerate()
    assert [r.getMessage() for r in caplog.records if r.name == "tfcaf.visualize"] == [
        "warning: cam: 2 of 3 maps are constant or non-finite (degenerate): their heatmaps "
        "are all zeros"]
