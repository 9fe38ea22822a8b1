"""bin/evaluate on a classifier trained here on the embedded digits set."""

import json
import os
import subprocess
import sys

import cv2
import pytest

from tfcaf import applications
from tfcaf.export import export_savedmodel
from tfcaf.training import TrainConfig, train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(REPO, "bin", "evaluate")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, digits_dir):
    model_dir = str(tmp_path_factory.mktemp("adl"))
    train(TrainConfig(head="adl", data_dir=digits_dir, image_size=48, batch_size=16,
                      train_steps=40, learning_rate=0.003, log_every=20, checkpoint_every=40,
                      val_examples=32, summary_images=0, model_dir=model_dir))
    return os.path.join(model_dir, "model.keras"), digits_dir


def _evaluate(model, data_dir, out_dir, *extra):
    env = dict(os.environ, TFCAF_NO_VENV_SWITCH="1")
    return subprocess.run([sys.executable, BIN, f"--model={model}", f"--data_dir={data_dir}",
                           "--image_size=48", "--max_images=24", "--batch_size=12",
                           "--iterations=300", f"--out_dir={out_dir}", *extra],
                          capture_output=True, text=True, env=env, timeout=600)


def test_report_reproduces_and_grid_shows_boxes(trained, tmp_path):
    model, data_dir = trained
    runs = []
    for name in ("first", "second"):
        proc = _evaluate(model, data_dir, tmp_path / name, "--metric=iou,maxboxacc")
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs.append(json.loads((tmp_path / name / "metrics.json").read_text()))
    assert runs[0] == runs[1]
    assert set(runs[0]["methods"]) == {"cam", "gradcam", "l2caf", "l2caf_specific"}
    for values in runs[0]["methods"].values():
        assert 0.0 <= values["top1_loc"] <= values["gt_known_loc"] <= 1.0
        assert values["gt_known_loc"] <= values["maxboxacc_v1"] + 1e-9
    report = (tmp_path / "first" / "report.md").read_text()
    assert "| l2caf |" in report and "examples.png" in report
    grid = cv2.cvtColor(cv2.imread(str(tmp_path / "first" / "examples.png")), cv2.COLOR_BGR2RGB)
    red = (grid[..., 0] == 255) & (grid[..., 1] == 0) & (grid[..., 2] == 0)
    green = (grid[..., 0] == 0) & (grid[..., 1] == 255) & (grid[..., 2] == 0)
    assert red.sum() > 100 and green.sum() > 100


def test_sanity_check_table_and_plot(trained, tmp_path):
    model, data_dir = trained
    proc = _evaluate(model, data_dir, tmp_path, "--metric=sanity", "--methods=cam,l2caf",
                     "--sanity_images=4", "--sanity_stages=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads((tmp_path / "metrics.json").read_text())["sanity"]
    assert [r["layer"] for r in rows][0] == "logits" and len(rows) == 2
    for row in rows:
        for method in ("cam", "l2caf"):
            assert -1.0 <= row[method]["spearman"] <= 1.0
    assert (tmp_path / "sanity.png").exists()


def test_savedmodel_evaluation_and_errors(trained, tmp_path):
    model_path, data_dir = trained
    export = export_savedmodel(applications.load_model(model_path)[0], str(tmp_path), "adl",
                               iterations=100)
    proc = _evaluate(export, data_dir, tmp_path / "sm", "--metric=iou")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert set(json.loads((tmp_path / "sm" / "metrics.json").read_text())["methods"]) == \
        {"l2caf", "l2caf_specific"}
    bad = _evaluate(model_path, data_dir, tmp_path / "bad", "--metric=recall")
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines()[-1] == \
        "evaluate: error: --metric=recall/nmi needs a retrieval net (embedding output)"
