"""Bad inputs, outputs: what a run writes, under the one rule of
`tfcaf.outputs` (a run owns the files it writes and only those; each file
is renamed into place; nothing of a failed write stays).

Every row has a verdict: "refused" (non-zero exit, one line naming the
file, flag or folder; Ctrl-C: 130), "works" (exit 0, the files on disk are
the right ones). Binary rows run through `bad_input_harness` (one
interpreter per binary, the binaries at once); library rows run in this
process. Each row may check the files on disk afterwards.
"""

import concurrent.futures
import dataclasses
import errno
import json
import os
import random
import re
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import tensorflow as tf

from bad_input_harness import REPO, Case, run_cases, save_tiny_classifier
from tfcaf.cli import errors
from tfcaf.cli.naming import output_stems
from tfcaf.cli.visualize_runs import RUN_FILE
from tfcaf.outputs import MANIFEST, OutputError, OutputSet
from tfcaf.training.model_dir import RunLock

SIZE = 24


def _files(folder):
    """Files under `folder`, relative and sorted, without the manifest; a
    leftover temporary file shows up too."""
    return sorted(os.path.relpath(os.path.join(d, f), folder)
                  for d, _, names in os.walk(folder) for f in names
                  if f not in (MANIFEST, RUN_FILE))


def _image(seed, shape=(30, 40)):
    """A random picture with a bright square at a seed-dependent place, so
    that different seeds give different maps."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 80, shape + (3,), np.uint8)
    y, x = 4 + 3 * (seed % 5), 4 + 5 * (seed % 6)
    pixels[y:y + 8, x:x + 8] = 250
    return pixels


def _folder_dataset(root, per_class=2):
    """3 classes of `per_class` images with one box each, and boxes.csv."""
    rows = ["path,x_min,y_min,x_max,y_max"]
    for label in range(3):
        os.makedirs(os.path.join(root, f"c{label}"))
        for k in range(per_class):
            name = f"c{label}/{k}.png"
            cv2.imwrite(os.path.join(root, name), _image(10 * label + k, (SIZE, SIZE)))
            rows.append(f"{name},2,2,14,14")
    with open(os.path.join(root, "boxes.csv"), "w") as f:
        f.write("\n".join(rows) + "\n")


def _plant(root):
    """Every file the rows start from."""
    save_tiny_classifier(str(root / "tiny.keras"))
    for folder in ("photos", "mine", "coll", "many", "ev_user"):
        (root / folder).mkdir()
    cv2.imwrite(str(root / "photos" / "photo.png"), _image(0))
    cv2.imwrite(str(root / "mine" / "photo.png"), _image(1))
    for k, name in enumerate(("x.png", "x.jpg", "x_png.png")):
        cv2.imwrite(str(root / "coll" / name), _image(2 + k))
    for k in range(20):
        cv2.imwrite(str(root / "many" / f"m{k:02d}.png"), _image(k))
    (root / "broken.png").write_bytes(b"not an image")
    (root / "afile").write_text("a file, not a folder\n")
    (root / "ev_user" / "report.md").write_text("my own notes\n")
    (root / "exports" / "net" / "1").mkdir(parents=True)
    (root / "exports" / "net" / "1" / "planted").write_text("version 1\n")
    _folder_dataset(str(root / "data" / "test"))
    _folder_dataset(str(root / "train_data"), per_class=4)


@dataclasses.dataclass(frozen=True)
class Row:
    """One bad (or unusual) input: `argv` of `binary`, the exit status and
    a regex the last stderr line must match (stdout's last line for
    "works"), and `check(root, outcome)` of the files afterwards."""
    binary: str
    name: str
    verdict: str
    argv: list
    status: int
    line: str
    check: object = None
    interrupt_after: str = ""


def _bytes(*parts):
    return lambda root: (root.joinpath(*parts)).read_bytes()


def _unchanged(folder, name, original):
    def check(root, outcome):
        assert _files(root / folder) == [name]
        assert (root / folder / name).read_bytes() == original(root)
    return check


def _absent(*parts):
    def check(root, outcome):
        assert not root.joinpath(*parts).exists()
    return check


def _only(folder, names):
    def check(root, outcome):
        assert _files(root / folder) == sorted(names)
    return check


def _listed_before_the_error(folder):
    """The files on disk are exactly those the 'wrote N files before the
    error' line lists (none if it is absent), and no temporary file."""
    def check(root, outcome):
        found = re.search(r"wrote \d+ files before the error: (.*)", outcome.stderr)
        listed = sorted(os.path.relpath(p, folder) for p in found.group(1).split(", ")) \
            if found else []
        assert listed == (_files(root / folder) if (root / folder).exists() else [])
    return check


def _collisions_are_kept_apart(root, outcome):
    assert _files(root / "coll_out") == ["x.png.npy", "x.png.png", "x_jpg.npy", "x_jpg.png",
                                         "x_png.npy", "x_png.png"]
    import tfcaf
    from tfcaf import applications, render
    from tfcaf.data import read_image
    model = applications.load_model(str(root / "tiny.keras"))
    for source, stem in (("x.png", "x.png"), ("x.jpg", "x_jpg"), ("x_png.png", "x_png")):
        pixels = render.resize(read_image(str(root / "coll" / source)), (SIZE, SIZE))
        reference = tfcaf.explain(model, pixels[None].astype(np.float32), method="gradcam")
        np.testing.assert_allclose(np.load(root / "coll_out" / f"{stem}.npy"),
                                   reference.maps[0], atol=1e-5)


def _stale_files_removed(root, outcome):
    assert _files(root / "again") == ["photo.npy", "photo.png"]
    assert "removed 2 files an earlier run wrote to again" in outcome.stderr


MODEL = "--model=tiny.keras"
VISUALIZE = [
    Row("visualize", "input image as an output", "refused",
        [MODEL, "--images=photos/photo.png", "--out_dir=photos", "--method=gradcam"], 1,
        r"^visualize: error: --out_dir=photos: 'photos/photo\.png' is an input of this run; "
        r"choose another --out_dir$", _unchanged("photos", "photo.png", _bytes("photos",
                                                                                "photo.png"))),
    Row("visualize", "a user's file in --out_dir", "refused",
        [MODEL, "--images=photos/photo.png", "--out_dir=mine", "--method=gradcam"], 1,
        r"--out_dir=mine: 'mine/photo\.png' exists and no earlier tfcaf run wrote it there; "
        r"move it or choose another --out_dir$",
        _unchanged("mine", "photo.png", _bytes("mine", "photo.png"))),
    Row("visualize", "x.png, x.jpg and x_png.png in one folder", "works",
        [MODEL, "--images=coll/x.png,coll/x.jpg,coll/x_png.png", "--out_dir=coll_out",
         "--method=gradcam"], 0, r"^wrote 6 files to coll_out$", _collisions_are_kept_apart),
    Row("visualize", "--targets=1,1", "refused",
        [MODEL, "--images=photos/photo.png", "--out_dir=dup", "--method=cam", "--targets=1,1"],
        2, r"^visualize: error: .*--targets.*class 1 is given twice; give each class once$",
        _absent("dup")),
    Row("visualize", "first run into --out_dir", "works",
        [MODEL, "--images=photos/photo.png,coll/x.jpg", "--out_dir=again", "--method=gradcam"],
        0, r"^wrote 4 files to again$"),
    Row("visualize", "second run into it, fewer images: stale files removed", "works",
        [MODEL, "--images=photos/photo.png", "--out_dir=again", "--method=gradcam"], 0,
        r"^wrote 2 files to again$", _stale_files_removed),
    Row("visualize", "--out_dir is an existing file", "refused",
        [MODEL, "--images=photos/photo.png", "--out_dir=afile", "--method=gradcam"], 1,
        r"^visualize: error: --out_dir=afile is an existing file, not a folder$"),
    Row("visualize", "--out_dir inside an existing file", "refused",
        [MODEL, "--images=photos/photo.png", "--out_dir=afile/sub", "--method=gradcam"], 1,
        r"^visualize: error: --out_dir=afile/sub: '.*/afile' is an existing file, not a "
        r"folder$"),
    Row("visualize", "broken image half-way: written files listed", "refused",
        [MODEL, "--images=photos/photo.png,broken.png", "--out_dir=half", "--method=gradcam",
         "--batch_size=1"], 1, r"^visualize: error: .*broken\.png",
        lambda root, outcome: (_listed_before_the_error("half")(root, outcome),
                               _only("half", ["photo.npy", "photo.png"])(root, outcome))),
    Row("visualize", "Ctrl-C during a batch", "refused",
        [MODEL, "--images=many/*.png", "--out_dir=interrupted", "--method=gradcam",
         "--batch_size=1"], 130, r"^visualize: error: interrupted$",
        _listed_before_the_error("interrupted"), interrupt_after=r"\[1/20\] images explained"),
]

EVALUATE_COMMON = [MODEL, "--dataset=folder", "--data_dir=data", "--split=test",
                   "--methods=gradcam", "--batch_size=6"]
EVALUATE = [
    Row("evaluate", "first run into --out_dir", "works",
        EVALUATE_COMMON + ["--metric=iou", "--out_dir=ev"], 0, r"^report: ev/report\.md$"),
    Row("evaluate", "second run into it without examples: stale examples.png removed", "works",
        EVALUATE_COMMON + ["--metric=sanity", "--sanity_images=2", "--sanity_stages=1",
                           "--out_dir=ev"], 0, r"^report: ev/report\.md$",
        lambda root, outcome: (_only("ev", ["metrics.json", "report.md", "sanity.png"])(
            root, outcome), json.loads((root / "ev" / "metrics.json").read_text())["sanity"])),
    Row("evaluate", "a user's report.md in --out_dir", "refused",
        EVALUATE_COMMON + ["--metric=iou", "--out_dir=ev_user"], 1,
        r"^evaluate: error: out_dir 'ev_user': 'ev_user/report\.md' exists and no earlier "
        r"tfcaf run wrote it there; move it or choose another out_dir$",
        _unchanged("ev_user", "report.md", _bytes("ev_user", "report.md"))),
    Row("evaluate", "--out_dir is an existing file", "refused",
        EVALUATE_COMMON + ["--metric=iou", "--out_dir=afile"], 1,
        r"^evaluate: error: out_dir 'afile' is an existing file, not a folder$"),
    Row("evaluate", "Ctrl-C during the pass", "refused",
        EVALUATE_COMMON + ["--metric=iou", "--out_dir=ev_int", "--methods=l2caf"], 130,
        r"^evaluate: error: interrupted$", _absent("ev_int"),
        interrupt_after=r"evaluating iou on "),
]


def _next_export_works(root, outcome):
    assert os.path.isfile(root / "killed" / "net" / "1" / "saved_model.pb")
    assert [p for p in os.listdir(root / "killed" / "net") if p.isdigit()] == ["1"]


EXPORT_COMMON = [MODEL, "--iterations=5"]
EXPORT = [
    Row("export", "--name=../../x", "refused",
        EXPORT_COMMON + ["--name=../../x", "--export_base=exports"], 1,
        r"^export: error: export name '\.\./\.\./x' is not one plain folder name \(no '/', no "
        r"leading '\.'\): the export must stay inside 'exports'$", _absent("..", "x")),
    Row("export", "absolute --name", "refused",
        EXPORT_COMMON + ["--name=/tmp/tfcaf_absolute_export_name", "--export_base=exports"],
        1, r"^export: error: export name '/tmp/tfcaf_absolute_export_name' is not one plain",
        lambda root, outcome: _absent("/tmp/tfcaf_absolute_export_name")(root, outcome)),
    Row("export", "an existing --version", "refused",
        EXPORT_COMMON + ["--name=net", "--export_base=exports", "--version=1"], 1,
        r"^export: error: export version 'exports/net/1' already exists and is never "
        r"replaced; the next free version is 2$",
        _unchanged("exports/net/1", "planted", _bytes("exports", "net", "1", "planted"))),
    Row("export", "--export_base is an existing file", "refused",
        EXPORT_COMMON + ["--name=net", "--export_base=afile"], 1,
        r"^export: error: export folder 'afile/net': '.*/afile' is an existing file, not a "
        r"folder$"),
    Row("export", "Ctrl-C while exporting", "refused",
        EXPORT_COMMON + ["--name=int", "--export_base=exports"], 130,
        r"^export: error: interrupted$",
        lambda root, outcome: _only("exports/int", [])(root, outcome)
        if (root / "exports" / "int").exists() else None,
        interrupt_after=r"exporting tiny\.keras to exports/int/1"),
    Row("export", "after a SIGKILL mid-export, the next export works", "works",
        EXPORT_COMMON + ["--name=net", "--export_base=killed"], 0,
        r"^exported tiny\.keras to killed/net/1$", _next_export_works),
]

TRAIN_COMMON = ["--dataset=folder", "--data_dir=train_data", "--image_size=24",
                "--batch_size=4", "--val_examples=4", "--summary_images=0", "--noaugment",
                "--learning_rate=0.01", "--lr_schedule=constant"]
TRAIN = [
    Row("train", "two runs on one --model_dir at once", "refused",
        TRAIN_COMMON + ["--model_dir=busy", "--train_steps=2"], 1,
        rf"^train: error: --model_dir=busy is in use by another bin/train run \(pid "
        rf"{os.getpid()} on host ", _only("busy", ["train.lock"])),
    # Interrupted once a checkpoint is saved, so the next row resumes it.
    Row("train", "Ctrl-C during training", "refused",
        TRAIN_COMMON + ["--model_dir=run", "--train_steps=5000", "--checkpoint_every=1",
                        "--log_every=1"], 130,
        r"^train: error: interrupted at step \d+; resume with the same command; it restarts "
        r"from ckpt-\d+$", _absent("run", "model.keras"), interrupt_after=r"step 2/5000"),
    Row("train", "changed settings on resume", "refused",
        [a.replace("0.01", "0.02") for a in TRAIN_COMMON]
        + ["--model_dir=run", "--train_steps=5000", "--checkpoint_every=1", "--log_every=1"],
        1, r"^train: error: run holds a run with other settings: --learning_rate=0\.02 \(was "
        r"0\.01\); use another --model_dir$", _absent("run", "model.keras")),
    Row("train", "--model_dir is an existing file", "refused",
        TRAIN_COMMON + ["--model_dir=afile", "--train_steps=2"], 2,
        r"^train: error: flag --model_dir=afile: names a file; give a folder"),
]
DEMO = [
    Row("demo", "--out_dir is an existing file", "refused", ["--smoke", "--out_dir=afile"], 1,
        r"^demo: error: --out_dir=afile is an existing file, not a folder$"),
    Row("demo", "Ctrl-C while it starts training", "refused",
        ["--smoke", "--out_dir=demo", "--data_dir=digits"], 130, r"^demo: error: interrupted",
        _absent("demo", "report.md"), interrupt_after=r"training demo/runs/digits_triplet"),
]
ROWS = VISUALIZE + EVALUATE + EXPORT + TRAIN + DEMO


def _kill_an_export(root):
    """Starts bin/export and SIGKILLs it while its temporary version folder
    exists; returns what is left under the model folder."""
    env = dict(os.environ, TFCAF_NO_VENV_SWITCH="1")
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, "bin", "export"), MODEL,
                             "--name=net", "--export_base=killed", "--iterations=5"], cwd=root,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder, deadline = root / "killed" / "net", time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if folder.is_dir() and any(p.name.startswith(".tmp-") for p in folder.iterdir()):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait()
    return proc.returncode, sorted(p.name for p in folder.iterdir() if not
                                   p.name.startswith(".tmp-"))


def _cases(rows):
    return [Case(r.name, r.argv, timeout_s=240, interrupt_after=r.interrupt_after)
            for r in rows]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The planted folder and every binary row's outcome; the binaries run
    at once (the export table after the killed export)."""
    root = tmp_path_factory.mktemp("outputs")
    _plant(root)
    lock = RunLock(str(root / "busy")).acquire()  # a run holding the folder
    try:
        with concurrent.futures.ThreadPoolExecutor(5) as pool:
            def export_after_kill():
                killed = _kill_an_export(root)
                return killed, run_cases("export", _cases(EXPORT), root)
            jobs = {b: pool.submit(run_cases, b, _cases(rows), root)
                    for b, rows in (("visualize", VISUALIZE), ("evaluate", EVALUATE),
                                    ("train", TRAIN), ("demo", DEMO))}
            killed, exported = pool.submit(export_after_kill).result()
            outcomes = {b: job.result() for b, job in jobs.items()}
    finally:
        lock.release()
    outcomes["export"] = exported
    return root, outcomes, killed


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.binary}: {r.name}" for r in ROWS])
def test_binary(world, row):
    root, outcomes, _ = world
    outcome = outcomes[row.binary][row.name]
    assert outcome.status == row.status, (outcome.status, outcome.stderr[-3000:])
    last = outcome.stdout.strip().splitlines()[-1] if row.verdict == "works" \
        else outcome.last_line
    assert re.search(row.line, last), (last, outcome.stderr[-3000:])
    assert "Traceback" not in outcome.stderr, outcome.stderr[-3000:]
    if row.check:
        row.check(root, outcome)


def test_sigkill_during_export_leaves_no_version(world):
    _, _, (status, left) = world
    assert status == -signal.SIGKILL, "the export finished before it could be killed"
    assert left == [], left  # nothing under any version path


# Library rows: (name, verdict, function of tmp_path that raises, error regex).
def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _partial_then_full(path, *args, **kwargs):
    with open(path, "wb") as f:
        f.write(b"GIF89a, cut short")
    _full_disk()


def _gif_on_a_full_disk(tmp_path, monkeypatch):
    """bin/visualize's writer with the GIF write failing half-way."""
    from tfcaf import applications, render
    from tfcaf.caf import SolverConfig
    from tfcaf.cli.heatmap_files import HeatmapWriter, output_files
    save_tiny_classifier(str(tmp_path / "tiny.keras"))
    cv2.imwrite(str(tmp_path / "photo.png"), _image(0))
    monkeypatch.setattr(render, "write_gif", _partial_then_full)
    writer = HeatmapWriter(applications.load_model(str(tmp_path / "tiny.keras")), "l2caf",
                           None, (SIZE, SIZE), gif_every=5,
                           solver=SolverConfig(max_iterations=10))
    outputs = OutputSet(str(tmp_path / "out"), "--out_dir", inputs=[str(tmp_path / "photo.png")])
    stem = str(tmp_path / "out" / "photo")
    outputs.claim(output_files(stem, None, gif=True))
    try:
        writer.write_batch([str(tmp_path / "photo.png")], [stem], None, outputs.write)
    finally:
        # The picture and map are whole and listed; nothing of the GIF.
        assert _files(tmp_path / "out") == ["photo.npy", "photo.png"]
        assert sorted(outputs.written) == [stem + ".npy", stem + ".png"]


def _evaluation(tmp_path):
    from tfcaf import applications
    from tfcaf.data import load_dataset
    from tfcaf.evaluation import EvalConfig, KerasAdapter
    save_tiny_classifier(str(tmp_path / "tiny.keras"))
    _folder_dataset(str(tmp_path / "data" / "test"))
    adapter = KerasAdapter(applications.load_model(str(tmp_path / "tiny.keras")))
    dataset = load_dataset("folder", str(tmp_path / "data"), "test", image_size=(SIZE, SIZE))
    return adapter, dataset, EvalConfig(metrics=("iou",), methods=("gradcam",), batch_size=6)


def _report_on_a_full_disk(tmp_path, monkeypatch):
    """evaluate() with report.md failing: a fresh folder is not created, an
    earlier run's files stay as they were."""
    from tfcaf.evaluation import evaluate, report
    adapter, dataset, config = _evaluation(tmp_path)
    evaluate(adapter, dataset, str(tmp_path / "earlier"), config)
    before = {n: (tmp_path / "earlier" / n).read_bytes() for n in _files(tmp_path / "earlier")}
    monkeypatch.setattr(report, "write_text", _full_disk)
    for folder in ("fresh", "earlier"):
        with pytest.raises(OutputError) as raised:
            evaluate(adapter, dataset, str(tmp_path / folder), config)
        assert not (tmp_path / "fresh").exists()
        assert {n: (tmp_path / "earlier" / n).read_bytes()
                for n in _files(tmp_path / "earlier")} == before
    raise raised.value


class _ArchiveOnAFullDisk:
    """Writes part of a SavedModel, then fails as TensorFlow does on a full disk."""

    def write_out(self, path, verbose=False):
        os.makedirs(os.path.join(path, "variables"))
        with open(os.path.join(path, "saved_model.pb"), "wb") as f:
            f.write(b"cut short")
        raise tf.errors.ResourceExhaustedError(
            None, None, "Failed to write variables/variables.data; No space left on device")


def _export_on_a_full_disk(tmp_path, monkeypatch):
    from tfcaf.export.savedmodel import _write_version
    try:
        _write_version(_ArchiveOnAFullDisk(), str(tmp_path / "net" / "1"), {})
    finally:
        assert os.listdir(tmp_path / "net") == []  # no version, no temporary folder


def _manifest_outside_the_folder(tmp_path, monkeypatch):
    """An edited manifest naming a file outside its folder deletes nothing."""
    (tmp_path / "victim.txt").write_text("keep me\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / MANIFEST).write_text(json.dumps({"files": ["../victim.txt"]}))
    outputs = OutputSet(str(tmp_path / "out"))
    outputs.claim([str(tmp_path / "out" / "a.txt")])
    outputs.write(str(tmp_path / "out" / "a.txt"), lambda p: open(p, "w").close())
    assert outputs.finish() == 1
    assert (tmp_path / "victim.txt").read_text() == "keep me\n"


def _one_name_twice(tmp_path, monkeypatch):
    OutputSet(str(tmp_path / "out"), "--out_dir").claim([str(tmp_path / "out" / "a.png")] * 2)


LIBRARY_ROWS = [
    ("full disk while visualize writes a GIF", "refused", _gif_on_a_full_disk,
     r"^cannot write '.*/out/photo\.gif': No space left on device \(free some space and run "
     r"again\)$"),
    ("full disk while evaluate writes report.md", "refused", _report_on_a_full_disk,
     r"^cannot write '.*/earlier/report\.md': No space left on device"),
    ("full disk while export writes a version", "refused", _export_on_a_full_disk,
     r"^cannot write export '.*/net/1': Failed to write variables/variables\.data; No space "
     r"left on device; nothing was left under it$"),
    ("manifest naming a file outside its folder", "works", _manifest_outside_the_folder,
     None),
    ("one output name twice in a run", "refused", _one_name_twice,
     r"--out_dir=.*/out: two outputs of this run are named '.*/out/a\.png'$"),
]


@pytest.mark.parametrize("name,verdict,run,error", LIBRARY_ROWS,
                         ids=[row[0] for row in LIBRARY_ROWS])
def test_library(tmp_path, monkeypatch, name, verdict, run, error):
    if error is None:
        run(tmp_path, monkeypatch)
        return
    with pytest.raises(OutputError, match=error) as raised:
        run(tmp_path, monkeypatch)
    # The binaries print it as one line and exit 1.
    assert errors.exit_status(raised.value) == errors.USER_MISTAKE
    assert errors.one_line(raised.value) == str(raised.value)


def _adversarial_names(rng):
    """Inputs whose names invite collisions: stems that are others' names
    with an extension folded in, one name in two folders, case twins."""
    stems = ["x", "x_png", "x.png", "x_jpg", "X", "y"]
    paths = {f"{rng.choice(['a', 'b', 'a/c'])}/{rng.choice(stems)}"
             f"{rng.choice(['.png', '.jpg', '.JPG'])}" for _ in range(rng.randint(2, 12))}
    return sorted(paths)


def test_output_names_are_unique_for_every_target_and_extension():
    rng = random.Random(0)
    for _ in range(300):
        paths = _adversarial_names(rng)
        stems = output_stems(paths)
        files = [s + suffix + ext for s in stems for suffix in ("_t3", "_t33", "_t0")
                 for ext in (".png", ".npy", ".gif")]
        assert len(set(files)) == len(files), paths
        assert len({s.casefold() for s in stems}) == len(stems) or \
            len({p.casefold() for p in paths}) < len(paths), paths
