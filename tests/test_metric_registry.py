"""The metric registry: a metric is one function and one entry. A toy
metric registered by a module of its own is run by bin/evaluate and
reported in metrics.json and report.md with the values a hand computation
gives; `tfcaf.metrics.<name>` is each entry's function."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tfcaf import metrics
from tfcaf.data import load_dataset
from tfcaf.errors import TfcafError
from tfcaf.metrics import registry

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOY = '''
import numpy as np
from tfcaf.metrics import registry


def toy(heatmaps, targets, shift=0.0):
    """Per image: its class id plus `shift`, and its heatmap's peak."""
    return {"label": np.asarray(targets, np.float64) + shift,
            "peak": np.asarray(heatmaps).max(axis=(1, 2))}


registry.register(registry.Metric(
    name="toy", family="complexity", description="a toy metric", function="toy_metric:toy",
    inputs=("heatmaps", "targets"), options={"shift": 0.0}, values=("label", "peak"),
    columns={"toy_label": "label", "toy_peak": "peak"}, protocol="class id + {shift}"))
'''


def test_registry_names_and_library_functions():
    from tfcaf.metrics import faithfulness, pixel_precision
    assert {"iou", "maxboxacc", "pxap", "recall", "nmi", "deletion", "insertion",
            "average_drop", "pointing_game", "sanity"} <= set(registry.names())
    assert metrics.pxap is pixel_precision.pxap
    assert metrics.pointing_game is faithfulness.pointing_game
    for metric in registry.METRICS.values():
        assert callable(getattr(metrics, metric.name)), metric.name
        if metric.batch_function:
            assert callable(registry.load(metric.batch_function))


def test_no_metric_is_named_as_a_module_of_the_package():
    # `tfcaf.metrics.<name>` is the function; a submodule of that name
    # would replace it once imported.
    package = os.path.dirname(metrics.__file__)
    modules = {f[:-3] for f in os.listdir(package) if f.endswith(".py")}
    assert not modules & set(registry.names())


def test_entries_are_checked_when_registered():
    with pytest.raises(TypeError, match="unknown input 'pixels'"):
        registry.Metric(name="x", family="complexity", description="", function="m:f",
                        inputs=("pixels",))
    with pytest.raises(TypeError, match="unknown family"):
        registry.Metric(name="x", family="colour", description="", function="m:f")
    with pytest.raises(TfcafError, match="already registered"):
        registry.register(registry.metric("iou"))
    with pytest.raises(TfcafError, match="unknown option.*shift.*takes cam_threshold"):
        registry.metric("iou").resolve_options(given={"shift": 1})


def _evaluate(tmp_path, model, digits_dir, *flags):
    (tmp_path / "toy_metric.py").write_text(TOY)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    return subprocess.run(
        [sys.executable, os.path.join(REPO, "bin", "evaluate"), f"--model={model}",
         f"--data_dir={digits_dir}", "--image_size=32", "--max_images=6", "--batch_size=4",
         "--methods=gradcam", f"--out_dir={tmp_path / 'out'}", *flags],
        capture_output=True, text=True, env=env, timeout=300)


def test_bin_evaluate_reports_a_registered_toy_metric(tmp_path, tiny_model, digits_dir):
    run = _evaluate(tmp_path, tiny_model, digits_dir, "--metric_modules=toy_metric",
                    "--metric=toy,pxap", "--metric_options=toy.shift=0.5")
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads((tmp_path / "out" / "metrics.json").read_text())
    dataset = load_dataset("digits", digits_dir, "test", image_size=32)
    labels = dataset.labels[dataset.evenly_spaced_indices(6)]
    gradcam = summary["methods"]["gradcam"]
    assert gradcam["toy_label"] == pytest.approx(labels.mean() + 0.5)
    assert gradcam["toy_peak"] in (0.0, 1.0) or 0.0 < gradcam["toy_peak"] <= 1.0
    assert 0.0 <= gradcam["pxap"] <= 1.0
    assert summary["settings"]["metric_options"]["toy"] == {"shift": 0.5}
    report = (tmp_path / "out" / "report.md").read_text()
    assert "toy_label" in report and "- toy: class id + 0.5." in report


def test_bin_evaluate_refuses_unknown_metrics_and_modules(tmp_path, tiny_model, digits_dir):
    run = _evaluate(tmp_path, tiny_model, digits_dir, "--metric=toy")
    assert run.returncode == 2 and "--metric: unknown 'toy'; choose from iou" in run.stderr
    run = _evaluate(tmp_path, tiny_model, digits_dir, "--metric_modules=no_such_module")
    assert run.returncode == 2 and "--metric_modules=no_such_module: cannot import" in run.stderr
    run = _evaluate(tmp_path, tiny_model, digits_dir, "--metric=iou",
                    "--metric_options=iou.cam_threshold=high")
    assert run.returncode == 2 and "'high' is not a number" in run.stderr


FAST = {"road": {"percentiles": (30, 70), "order": "morf"}, "faithfulness_correlation": {"nb_runs": 8},
        "stability": {"nb_samples": 2}}


def test_every_maps_metric_runs_in_one_evaluation(tmp_path, tiny_model, digits_dir):
    from tfcaf import applications
    from tfcaf.evaluation import EvalConfig, KerasAdapter, evaluate
    names = [n for n in registry.names(scope="maps")]
    dataset = load_dataset("digits", digits_dir, "test", image_size=32)
    summary = evaluate(KerasAdapter(applications.load_model(str(tiny_model))), dataset,
                       str(tmp_path), EvalConfig(metrics=names, methods=("gradcam", "l2caf"),
                                                 max_images=4, batch_size=4,
                                                 metric_options=FAST))
    columns = {c for n in names for c in registry.metric(n).columns} | {
        "top1_loc", "gt_known_loc", "maxboxacc_v1", "maxboxacc_v2", "pxap"}
    for method, row in summary["methods"].items():
        assert columns <= set(row), (method, columns - set(row))
        assert all(np.isfinite(v) for v in row.values()), (method, str(row))
        # A constant map has no entropy: left out of the mean and counted.
        missing = summary["undefined_values"].get(method, {})
        assert missing.get("complexity", 0) == summary["degenerate_maps"][method]
    assert set(summary["protocols"]) == set(names)
    assert list(summary["settings"]["metric_options"]["road"]["percentiles"]) == [30, 70]


def test_metric_options_that_name_a_setting_set_it_everywhere():
    from tfcaf.evaluation import EvalConfig
    config = EvalConfig(metrics=("iou", "pointing_game", "sanity"), metric_options={
        "iou": {"cam_threshold": 0.3}, "pointing_game": {"tolerance": 3},
        "sanity": {"sanity_images": 4}}).with_metric_options()
    assert (config.cam_threshold, config.pointing_tolerance, config.sanity_images) == (0.3, 3, 4)
    clash = EvalConfig(metrics=("iou", "maxboxacc"), metric_options={
        "iou": {"box_protocol": "tfcaf"}, "maxboxacc": {"box_protocol": "wsolevaluation"}})
    with pytest.raises(TfcafError, match="iou.box_protocol and maxboxacc.box_protocol set "
                                         "box_protocol differently"):
        clash.with_metric_options()


def test_random_draws_are_seeded_per_batch():
    metric = registry.metric("mufidelity")
    function = registry.load(metric.function)
    fields = {f: None for f in registry.MetricBatch._fields}
    arguments = [metric.arguments(registry.MetricBatch(**{**fields, "first_image": first}),
                                  metric.resolve_options(), function)["seed"]
                 for first in (0, 4)]
    assert arguments == [[0, 0], [0, 4]]
