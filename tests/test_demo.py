"""The reduced demo (make demo-smoke) runs the whole main job end to end."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_smoke_demo_writes_report_models_and_exports(tmp_path, digits_dir):
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "tfcaf.cli.demo", "--smoke", f"--out_dir={out}",
           f"--data_dir={digits_dir}"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = (out / "report.md").read_text()
    assert f"report: {out / 'report.md'}" in proc.stdout
    for name in ("digits_triplet", "digits_npairs", "digits_adl"):
        assert (out / "runs" / name / "model.keras").exists()
        assert (out / "exports" / name / "1" / "saved_model.pb").exists()
        assert (out / "eval" / name / "examples.png").exists()
        assert (out / "eval" / name / "faithfulness" / "curves.png").exists()
        assert f"| {name} |" in report
    for title in ("L2-CAF seed stability", "MaxBoxAccV2", "deletion AUC", "insertion AUC", "Average Drop",
                  "Increase in Confidence", "pointing game", "clovaai/wsolevaluation@96f4b88",
                  "| network | l2caf | l2caf_specific | cam | gradcam | gradcampp |"):
        assert title in report
    # A second run reuses the trained models (its evaluation, the same as
    # the first run's, is left out to keep the suite short).
    script = ("import logging, sys; from tfcaf.cli import demo; "
              "logging.basicConfig(level='INFO'); "
              "[demo.train_network(demo.network_config(n, *sys.argv[1:], True), False) "
              "for n in demo.NETWORKS]")
    again = subprocess.run([sys.executable, "-c", script, str(out), digits_dir], cwd=REPO,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("reusing") == 3 and "training" not in again.stderr
