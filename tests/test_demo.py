"""The reduced demo (make demo-smoke) runs the whole main job end to end."""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_smoke_demo_writes_report_models_and_exports(tmp_path, digits_dir):
    from tfcaf.cli import demo
    networks = demo.chosen_networks(demo.NETWORKS)  # the ViTs where keras-hub is installed
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "tfcaf.cli.demo", "--smoke", f"--out_dir={out}",
           f"--data_dir={digits_dir}", f"--networks={','.join(networks)}"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = (out / "report.md").read_text()
    assert f"report: {out / 'report.md'}" in proc.stdout
    for name in networks:
        assert (out / "runs" / name / "model.keras").exists()
        assert (out / "exports" / name / "1" / "saved_model.pb").exists()
        assert (out / "eval" / name / "examples.png").exists()
        assert (out / "eval" / name / "faithfulness" / "curves.png").exists()
        assert f"| {name} |" in report
    for title in ("L2-CAF seed stability", "## Protocols", "**average_drop**",
                  "**pointing_game**", "clovaai/wsolevaluation@96f4b88", "**road**",
                  "| method | top1_loc | gt_known_loc | maxboxacc_v1 | maxboxacc_v2 | pxap | "
                  "images |", "| method | stability ↓ | sparseness | complexity ↓ | images |"):
        assert title in report
    # Every method, three tables per network: numbers wherever the method
    # applies (CAM: the CNN classifier only); the many-pass methods on fewer images.
    from tfcaf.caf import METHODS
    for name in networks:
        section = report.split(f"## {name}\n")[1].split("\n## ")[0]
        tables = section.split("**")[2::2]
        assert len(tables) == 3, name
        for table, images in zip(tables, ("24", "8", "8")):
            rows = {line.split(" | ")[0][2:]: line for line in table.splitlines()[4:]
                    if line.startswith("| ")}
            assert list(rows) == list(METHODS), name
            for method, line in rows.items():
                cells = line.strip("| ").split(" | ")[1:]
                applies = method != "cam" or name == "digits_adl"
                assert ("–" not in cells[:-1]) == applies, (name, line)
                counts = "2" if METHODS[method].many_passes else images
                assert cells[-1] == (counts if applies else "–"), line
        many_pass = json.loads((out / "eval" / name / "many_pass" / "metrics.json").read_text())
        assert {"deletion_auc", "maxboxacc_v1", "pxap", "road", "mufidelity", "stability",
                "complexity"} <= set(many_pass["methods"]["rise"])
    # A second run reuses the trained models (its evaluation, the same as
    # the first run's, is left out to keep the suite short).
    script = ("import logging, sys; from tfcaf.cli import demo; "
              "logging.basicConfig(level='INFO'); "
              "[demo.train_network(demo.network_config(n, *sys.argv[1:3], True), False) "
              "for n in sys.argv[3].split(',')]")
    again = subprocess.run([sys.executable, "-c", script, str(out), digits_dir,
                            ",".join(networks)], cwd=REPO,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("reusing") == len(networks) and "training" not in again.stderr


def test_networks_flag_refuses_an_unknown_name_and_keeps_the_order_given():
    from tfcaf.cli import demo
    from tfcaf.errors import TfcafError
    with pytest.raises(TfcafError, match="--networks=digits_adl,digits_vgg: choose among"):
        demo.chosen_networks(["digits_adl", "digits_vgg"])
    assert demo.chosen_networks(["digits_adl", "digits_triplet"]) == ["digits_adl",
                                                                      "digits_triplet"]
    assert demo.chosen_networks() == ["digits_triplet", "digits_npairs", "digits_adl"]
