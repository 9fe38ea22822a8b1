"""`--help` of every binary, flag errors before TensorFlow loads, and the
flag choice lists against the registries they copy."""

import os
import re
import subprocess
import sys

import pytest

from tfcaf.cli import choices

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARIES = ("train", "evaluate", "export", "visualize")


def _run(binary, *args, cwd=REPO):
    env = dict(os.environ, TFCAF_NO_VENV_SWITCH="1")
    return subprocess.run([sys.executable, os.path.join(REPO, "bin", binary), *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _module_flags(helpfull, binary):
    """Flag names absl's --helpfull lists under the binary's own modules."""
    names, inside = set(), False
    for line in helpfull.splitlines():
        if re.match(r"^\S.*:$", line):
            inside = line[:-1] == f"tfcaf.cli.{binary}"
        elif inside and (m := re.match(r"^  --(?:\[no\])?(\w+):", line)):
            names.add(m.group(1))
    return names


@pytest.mark.parametrize("binary", BINARIES)
def test_help_lists_every_flag_of_the_binary_with_defaults(binary):
    proc = _run(binary, "--help")
    assert proc.returncode == 0, proc.stderr
    listed = set(re.findall(r"^  --(\w+)", proc.stdout, re.M))
    if binary == "train":  # its --helpfull loads TensorFlow: count its flags here
        own = set(_train_flags())
    else:
        own = _module_flags(_run(binary, "--helpfull").stdout, binary)
    assert len(own) >= 5
    assert own <= listed, own - listed
    assert proc.stdout.startswith(f"usage: {binary} [--flag=value ...]")
    assert "--verbosity=N, -v N, -v" in proc.stdout
    assert re.search(r"^  --\w+  \(default: \S+\)$", proc.stdout, re.M)
    assert proc.stderr == ""


def _train_flags():
    from absl import flags
    from tfcaf.cli import train_flags, usage
    flag_values = flags.FlagValues()
    train_flags.define_flags(flag_values)
    assert usage.ungrouped_flags(["tfcaf.cli.train_flags"], train_flags.FLAG_GROUPS,
                                 flag_values) == []
    return flag_values


@pytest.mark.parametrize("binary,args,message", [
    ("visualize", ["--image_size=0"], "flag --image_size=0: 0 is not a positive integer"),
    ("visualize", ["--image_size=-5"], "flag --image_size=-5: -5 is not a positive integer"),
    ("visualize", ["--targets=cat"], "flag --targets=['cat']: give class ids, integers >= 0, "
                                        "comma separated"),
    ("visualize", ["--method=gradcamm"], "flag --method=gradcamm: value should be one of "
                                         "<l2caf|l2caf_specific|cam|gradcam|gradcampp>"),
    ("evaluate", ["--iterations=0"], "flag --iterations=0: 0 is not a positive integer"),
    ("evaluate", ["--methods=cam,gradcamm"], "flag --methods=['cam', 'gradcamm']: unknown "
                                             "'gradcamm'; choose from "
                                             "l2caf, l2caf_specific, cam, gradcam, gradcampp"),
    ("evaluate", ["--cam_threshold=2"], "flag --cam_threshold=2: 2.0 is not a number in "
                                        "the range "
                                        "[0.0, 1.0]"),
    ("export", ["--version=-2"], "flag --version=-2: -2 is not a non-negative integer"),
    ("export", ["--bogus=1"], "Unknown command line flag 'bogus'"),
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


def test_choice_lists_equal_the_registries():
    from tfcaf.caf import METHODS
    from tfcaf.caf.filters import FILTERS
    from tfcaf.data import DATASETS
    from tfcaf.evaluation import BOX_PROTOCOLS, METRICS
    assert choices.METHODS == tuple(METHODS)
    assert choices.FILTERS == tuple(FILTERS)
    assert choices.METRICS == tuple(METRICS)
    assert choices.BOX_PROTOCOLS == tuple(BOX_PROTOCOLS)
    assert choices.DATASETS == tuple(DATASETS)
