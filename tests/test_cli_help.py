"""`--help` of every binary and of the demo, and flag errors, all before
TensorFlow loads."""

import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARIES = ("train", "evaluate", "export", "visualize")


def _run(binary, *args, cwd=REPO):
    """bin/BINARY, or `python -m tfcaf.cli.demo` for the demo."""
    env = dict(os.environ, TFCAF_NO_VENV_SWITCH="1")
    command = ["-m", "tfcaf.cli.demo"] if binary == "demo" else [
        os.path.join(REPO, "bin", binary)]
    return subprocess.run([sys.executable, *command, *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _module_flags(helpfull, module):
    """Flag names absl's --helpfull lists under `module`."""
    names, inside = set(), False
    for line in helpfull.splitlines():
        if re.match(r"^\S.*:$", line):
            inside = line[:-1] == module
        elif inside and (m := re.match(r"^  --(?:\[no\])?(\w+):", line)):
            names.add(m.group(1))
    return names


@pytest.mark.parametrize("binary", BINARIES + ("demo",))
def test_help_lists_every_flag_of_the_binary_with_defaults(binary):
    proc = _run(binary, "--help")
    assert proc.returncode == 0, proc.stderr
    listed = set(re.findall(r"^  --(\w+)", proc.stdout, re.M))
    # absl files the flags under the module that defines them: train's in
    # train_flags, and the demo's (run as __main__) under its file name.
    module = {"demo": os.path.join(REPO, "tfcaf", "cli", "demo.py"),
              "train": "tfcaf.cli.train_flags"}.get(binary, f"tfcaf.cli.{binary}")
    helpfull = _run(binary, "--helpfull").stdout
    own = _module_flags(helpfull, module)
    assert len(own) >= 5
    assert own <= listed, own - listed
    # The solver flags are defined by tfcaf.cli.solver_flags for every
    # binary that explains.
    solver = _module_flags(helpfull, "tfcaf.cli.solver_flags")
    assert solver <= listed, solver - listed
    if binary != "train":
        assert {"solver", "optimizer", "restarts", "iterations"} <= solver
    assert proc.stdout.startswith(f"usage: {binary} [--flag=value ...]")
    assert "--verbosity=N, -v N, -v" in proc.stdout
    assert re.search(r"^  --\w+  \(default: \S+\)$", proc.stdout, re.M)
    assert proc.stderr == ""


@pytest.mark.parametrize("binary,args,message", [
    ("visualize", ["--image_size=0"], "flag --image_size=0: 0 is not a positive integer"),
    ("visualize", ["--image_size=-5"], "flag --image_size=-5: -5 is not a positive integer"),
    ("visualize", ["--targets=cat"], "flag --targets=['cat']: give class ids, integers >= 0, "
                                        "comma separated"),
    ("visualize", ["--method=gradcamm"], "flag --method=gradcamm: value should be one of "
                                         "<l2caf|l2caf_specific|cam|gradcam|gradcampp|"
                                         "xgradcam|hirescam|layercam|eigencam|scorecam|"
                                         "ablationcam|saliency|integrated_gradients|"
                                         "occlusion|smoothgrad|rise>"),
    ("evaluate", ["--iterations=0"], "flag --iterations=0: 0 is not a positive integer"),
    ("evaluate", ["--methods=cam,gradcamm"], "flag --methods=['cam', 'gradcamm']: unknown "
                                             "'gradcamm'; choose from "
                                             "l2caf, l2caf_specific, cam, gradcam, gradcampp, "
                                             "xgradcam, hirescam, layercam, eigencam, "
                                             "scorecam, ablationcam, saliency, "
                                             "integrated_gradients, occlusion, smoothgrad, "
                                             "rise"),
    ("evaluate", ["--cam_threshold=2"], "flag --cam_threshold=2: 2.0 is not a number in "
                                        "the range "
                                        "[0.0, 1.0]"),
    ("export", ["--version=-2"], "flag --version=-2: -2 is not a non-negative integer"),
    ("export", ["--bogus=1"], "Unknown command line flag 'bogus'"),
    ("train", ["--loss=nope"], "flag --loss=nope: value should be one of "
                               "<softmax|triplet|npairs>"),
    ("demo", ["--faithfulness_step=0"], "flag --faithfulness_step=0: 0 is not a positive "
                                        "integer"),
])
def test_flag_errors_are_one_line_and_come_before_tensorflow(binary, args, message):
    proc = _run(binary, *args)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"{binary}: error: {message}"]


def test_model_dir_that_is_a_file_is_rejected(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("x")
    proc = _run("train", f"--model_dir={path}")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "train: error: flag --model_dir=" + str(path) + ": names a file; "
        "give a folder (it is created if missing)"]
    assert not (tmp_path / "notes.txt").is_dir()


@pytest.mark.parametrize("module", ["tfcaf.cli.choices", "tfcaf.cli.train", "tfcaf.cli.demo",
                                    "tfcaf.cli.visualize", "tfcaf.cli.evaluate",
                                    "tfcaf.cli.export"])
def test_flag_definitions_import_no_tensorflow(module):
    """What the binaries read before parsing flags, the registries' names
    included, loads neither TensorFlow nor Keras."""
    code = (f"import sys, {module}, tfcaf.caf, tfcaf.training; "
            "tfcaf.caf.METHODS, tfcaf.caf.method, tfcaf.training.TrainConfig; "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
