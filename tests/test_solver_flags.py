"""The solver flags (`tfcaf.cli.solver_flags`): one `SolverConfig` from
--solver and the flags given, refused combinations as one line before
TensorFlow loads, and degenerate-map detection."""

import os
import subprocess
import sys

import numpy as np
import pytest
from absl import flags

from tfcaf.caf.solver_config import SolverConfig
from tfcaf.cli import solver_flags
from tfcaf.errors import TfcafError
from tfcaf.metrics.degenerate import degenerate_maps

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _parsed(*args, **define):
    flag_values = flags.FlagValues()
    solver_flags.define(flag_values=flag_values, **define)
    flag_values(["prog", *args])
    return flag_values


def _config(*args, **define):
    return solver_flags.solver_config(_parsed(*args, **define))


def test_defaults_are_the_presets_and_given_flags_override_them():
    assert _config() == SolverConfig()
    assert _config("--solver=authors") == SolverConfig.preset("authors")
    assert _config("--solver=authors").optimizer == "adam"
    assert _config("--solver=authors_pytorch").optimizer == "sgd"
    config = _config("--solver=authors", "--restarts=2", "--iterations=7", "--seed=3")
    assert config == SolverConfig.preset("authors", restarts=2, max_iterations=7, seed=3)
    assert _config("--optimizer=lbfgs").optimizer == "lbfgs"
    # bin/export's own default applies without the flag; evaluate's seed flag.
    assert _config(iterations=300).max_iterations == 300
    assert _config("--iterations=9", iterations=300).max_iterations == 9
    assert _config("--solver_seed=4", seed="solver_seed").seed == 4


@pytest.mark.parametrize("args,message", [
    (["--solver=authors", "--optimizer=lbfgs"],
     "--solver=authors --optimizer=lbfgs: option(s) end_learning_rate not used by the solver"),
    (["--solver=authors_pytorch", "--restarts=2"],
     "--solver=authors_pytorch --restarts=2: restarts=2 with init='ones'"),
])
def test_refused_combinations_name_the_flags(args, message):
    with pytest.raises(TfcafError) as err:
        _config(*args)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def _run(binary, *args):
    env = dict(os.environ, TFCAF_NO_VENV_SWITCH="1")
    command = ["-m", "tfcaf.cli.demo"] if binary == "demo" else [
        os.path.join(REPO, "bin", binary)]
    return subprocess.run([sys.executable, *command, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("binary", ["visualize", "evaluate", "export", "demo"])
def test_binaries_refuse_an_unread_option_in_one_line(binary):
    proc = _run(binary, "--solver=authors", "--optimizer=lbfgs")
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(
        f"{binary}: error: --solver=authors --optimizer=lbfgs: option(s) end_learning_rate "
        "not used by the solver: optimizer='lbfgs', which reads history, "), line


def test_visualize_refuses_solver_flags_for_a_method_without_solver():
    proc = _run("visualize", "--method=gradcam", "--iterations=7", "--output=logits")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "visualize: error: --iterations=7: --method=gradcam has no solver (methods with one: "
        "l2caf, l2caf_specific)"]


def test_evaluate_refuses_solver_flags_for_a_savedmodel(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(b"")
    proc = _run("evaluate", f"--model={tmp_path}", "--restarts=2")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"evaluate: error: --restarts=2: --model={tmp_path} is a SavedModel, whose solver "
        "settings and preprocessing were fixed at export (bin/export takes these flags)"]


def test_degenerate_maps():
    rng = np.random.default_rng(0)
    maps = rng.random((6, 4, 5))
    maps[1] = 0.0                         # all zeros
    maps[2] = 3.5                         # constant
    maps[3] = 1e9 + rng.random((4, 5)) * 1e-4  # a spread below 1e-12 of its scale
    maps[4, 0, 0] = np.nan
    maps[5, 1, 1] = np.inf
    np.testing.assert_array_equal(degenerate_maps(maps),
                                  [False, True, True, True, True, True])
    # Any leading shape: (B, T, h, w) -> (B, T).
    assert degenerate_maps(maps.reshape(3, 2, 4, 5)).shape == (3, 2)
