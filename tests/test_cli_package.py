"""The package as a user installs it: a wheel built from the sources,
installed offline into a fresh virtualenv, its console scripts and
`python -m tfcaf.cli.X` run from a folder outside the repository; and
`import tfcaf`, which loads no TensorFlow."""

import os
import shutil
import subprocess
import sys
import sysconfig
import venv

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROGRAMS = ("train", "evaluate", "export", "visualize", "demo")


def _check(cmd, **kwargs):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kwargs)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv folder, its python): tfcaf from a wheel; TensorFlow and the
    other dependencies seen through a .pth file naming this interpreter's
    site-packages (whose own .pth files, the editable install among them,
    are not read)."""
    root = tmp_path_factory.mktemp("package")
    source = root / "source"
    shutil.copytree(os.path.join(REPO, "tfcaf"), source / "tfcaf",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(os.path.join(REPO, name), source / name)
    _check([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
            "--no-index", "-q", "-w", str(root / "wheels"), str(source)])
    wheels = list((root / "wheels").glob("tfcaf-*.whl"))
    assert len(wheels) == 1, wheels
    env_dir = root / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = _check([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
    with open(os.path.join(site.stdout.strip(), "outer_dependencies.pth"), "w") as f:
        f.write(sysconfig.get_path("purelib") + "\n")
    _check([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
            "--no-index", "-q", str(wheels[0])])
    return env_dir, python


def test_console_scripts_and_python_m_work_without_the_repository(installed, tmp_path):
    env_dir, python = installed
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = _check([str(python), "-c", "import tfcaf, tfcaf.cli.launch as l; "
                    "print(tfcaf.__version__, tfcaf.__file__)"], cwd=tmp_path, env=env)
    version, path = where.stdout.split()
    assert path.startswith(str(env_dir)), path
    assert version == _check([sys.executable, "-c", "import tfcaf; print(tfcaf.__version__)"],
                             cwd=REPO).stdout.strip()
    for name in PROGRAMS:
        proc = _check([str(env_dir / "bin" / f"tfcaf-{name}"), "--help"], cwd=tmp_path, env=env)
        assert proc.stdout.startswith(f"usage: tfcaf-{name} "), proc.stdout[:200]
        assert any(flag in proc.stdout for flag in ("--out_dir", "--export_base", "--model_dir"))
    proc = _check([str(python), "-m", "tfcaf.cli.train", "--help"], cwd=tmp_path, env=env)
    assert proc.stdout.startswith("usage: train ") and "--model_dir" in proc.stdout
    proc = subprocess.run([str(env_dir / "bin" / "tfcaf-visualize"), "--image_size=0"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("tfcaf-visualize: error: flag --image_size=0: "
                                   "0 is not a positive integer")


def test_import_tfcaf_lists_its_names_and_loads_no_tensorflow():
    code = ("import sys, tfcaf; print(*(n for n in dir(tfcaf) if not n.startswith('_'))); "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    names, loaded = _check([sys.executable, "-c", code], cwd=REPO).stdout.splitlines()
    assert {"explain", "applications", "caf", "cli", "data", "evaluation", "export", "losses",
            "metrics", "models", "training"} <= set(names.split())
    assert loaded == "[]"
