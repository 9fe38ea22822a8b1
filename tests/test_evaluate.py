"""`tfcaf.evaluation.evaluate` on a classifier trained here on the embedded
digits set, and the faithfulness metrics on it: a ground-truth-box oracle
map must beat a uniform-noise map on all four."""

import importlib.metadata
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

import tfcaf
from tfcaf import applications, models
from tfcaf.caf import SolverConfig
from tfcaf.data import load_dataset
from tfcaf.errors import TfcafError
from tfcaf.evaluation import EvalConfig, KerasAdapter, SavedModelAdapter, evaluate
from tfcaf.export import export_savedmodel, read_settings
from tfcaf.metrics import faithfulness as fm
from tfcaf.training import TrainConfig, train

SIZE = 48
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, digits_dir):
    model_dir = str(tmp_path_factory.mktemp("adl"))
    train(TrainConfig(head="adl", data_dir=digits_dir, image_size=SIZE, batch_size=16,
                      train_steps=40, learning_rate=0.003, log_every=20, checkpoint_every=40,
                      val_examples=32, summary_images=0, model_dir=model_dir))
    model = applications.load_model(os.path.join(model_dir, "model.keras"))
    dataset = load_dataset("digits", digits_dir, "test", image_size=(SIZE, SIZE))
    return model, dataset


def _config(**options):
    return EvalConfig(**{"max_images": 24, "batch_size": 12, **options})


def test_report_reproduces_and_grid_shows_whole_labels_and_boxes(trained, tmp_path):
    model, dataset = trained
    methods = ("cam", "gradcam", "gradcampp", "l2caf", "l2caf_specific")
    runs = []
    for name in ("first", "second"):
        config = _config(metrics=("iou", "maxboxacc"), methods=methods)
        evaluate(KerasAdapter(model, SolverConfig(max_iterations=300)), dataset,
                 str(tmp_path / name), config)
        runs.append(json.loads((tmp_path / name / "metrics.json").read_text()))
    assert runs[0] == runs[1]
    assert set(runs[0]["methods"]) == set(methods)
    assert runs[0]["settings"]["box_protocol"] == "wsolevaluation"
    for values in runs[0]["methods"].values():
        assert 0.0 <= values["top1_loc"] <= values["gt_known_loc"] <= 1.0
        # The fixed-τ box is the MaxBoxAcc v1 box at that τ.
        assert values["gt_known_loc"] <= values["maxboxacc_v1"] + 1e-9
    report = (tmp_path / "first" / "report.md").read_text()
    assert "| l2caf |" in report and "examples.png" in report
    assert "clovaai/wsolevaluation@96f4b88" in report
    grid = cv2.cvtColor(cv2.imread(str(tmp_path / "first" / "examples.png")), cv2.COLOR_BGR2RGB)
    red = (grid[..., 0] == 255) & (grid[..., 1] == 0) & (grid[..., 2] == 0)
    green = (grid[..., 0] == 0) & (grid[..., 1] == 255) & (grid[..., 2] == 0)
    assert red.sum() > 100 and green.sum() > 100
    # Every column label is whole: the ink of each stays inside its cell.
    strip = grid[:22].min(axis=2) < 128
    cell = grid.shape[1] // (1 + len(methods))
    for j in range(1 + len(methods)):
        ink = np.nonzero(strip[:, j * cell:(j + 1) * cell].any(axis=0))[0]
        assert len(ink) and ink.min() > 0 and ink.max() < cell - 1


def test_each_box_protocol_is_recorded(trained, tmp_path):
    model, dataset = trained
    adapter = KerasAdapter(model, SolverConfig(max_iterations=100))
    results = {p: evaluate(adapter, dataset, str(tmp_path / p),
                           _config(metrics=("maxboxacc",), methods=("gradcam",),
                                   box_protocol=p))
               for p in ("wsolevaluation", "tfcaf")}
    for protocol, summary in results.items():
        assert summary["settings"]["box_protocol"] == protocol
        assert protocol in (tmp_path / protocol / "report.md").read_text()


def test_faithfulness_metrics_columns_and_curves(trained, tmp_path):
    model, dataset = trained
    summary = evaluate(KerasAdapter(model), dataset, str(tmp_path),
                       _config(metrics=("deletion", "insertion", "average_drop",
                                        "pointing_game"),
                               methods=("gradcam", "cam"), max_images=12,
                               faithfulness_step=96))
    for values in summary["methods"].values():
        assert 0.0 <= values["deletion_auc"] <= 1.0 and 0.0 <= values["insertion_auc"] <= 1.0
        assert 0.0 <= values["average_drop"] <= 1.0
        assert 0.0 <= values["pointing_game"] <= 1.0
    assert summary["settings"]["substrate_rgb"] == [0.0, 0.0, 0.0]  # digits: "unit"
    report = (tmp_path / "report.md").read_text()
    auc = summary["methods"]["gradcam"]["deletion_auc"]
    assert f"| gradcam | {auc:.3f} |" in report  # AUCs in [0, 1], not %
    assert (tmp_path / "curves.png").exists()


def test_pointing_tolerance_reaches_the_metric_and_is_recorded(trained, tmp_path):
    model, dataset = trained
    images, labels, boxes = next(iter(dataset.evenly_spaced(12, 12)))
    adapter = KerasAdapter(model)
    heatmaps = adapter.heatmaps(images.numpy(), labels.numpy(), "gradcam")
    for tolerance in (0, SIZE):
        summary = evaluate(adapter, dataset, str(tmp_path / str(tolerance)),
                           _config(metrics=("pointing_game",), methods=("gradcam",),
                                   max_images=12, pointing_tolerance=tolerance))
        expected = fm.pointing_game(heatmaps, list(boxes.numpy()), tolerance=tolerance)
        assert summary["settings"]["pointing_tolerance_px"] == tolerance
        assert summary["methods"]["gradcam"]["pointing_game"] == expected["pointing_game"]
    assert expected["pointing_game"] == 1.0  # a box grown by the image size holds every pixel
    with pytest.raises(TfcafError, match="--pointing_tolerance"):
        _config(pointing_tolerance=-1).validate()


def _oracle_and_noise(dataset, count):
    images, labels, boxes = next(iter(dataset.evenly_spaced(count, count)))
    images, labels, boxes = images.numpy(), labels.numpy(), boxes.numpy()
    oracle = np.zeros(images.shape[:3])
    for i, image_boxes in enumerate(boxes):
        # Pixel x is inside [x0, x1) when x0 <= x < x1: columns ceil(x0)..ceil(x1) - 1.
        for x0, y0, x1, y1 in np.ceil(image_boxes[(image_boxes >= 0).all(axis=1)]).astype(int):
            oracle[i, y0:y1, x0:x1] = 1.0
    noise = np.random.default_rng(0).random(oracle.shape)
    return images, labels, boxes, oracle, noise


def _oracle_against_noise(model, dataset, count=16):
    """Mean deletion/insertion AUC, Average Drop % and pointing-game rate of
    the ground-truth-box map and of a uniform-noise map."""
    images, labels, boxes, oracle, noise = _oracle_and_noise(dataset, count)
    predict, substrate = KerasAdapter(model).scores_input()
    scores = {}
    for name, maps in (("oracle", oracle), ("noise", noise)):
        options = dict(substrate=substrate, batch_size=64)
        curves = fm.deletion_insertion(predict, images, maps, labels, step=2 * SIZE, **options)
        drop = fm.average_drop_increase(predict, images, maps, labels, **options)
        scores[name] = {"deletion": curves["deletion"].mean(),
                        "insertion": curves["insertion"].mean(),
                        "average_drop": drop["average_drop"],
                        "pointing": fm.pointing_game(maps, boxes, tolerance=0)["pointing_game"]}
    return scores["oracle"], scores["noise"]


def test_oracle_box_map_beats_uniform_noise_on_drop_and_pointing(trained):
    # The 40-step model is barely better than chance, so its deletion and
    # insertion curves are too flat to rank maps: the slow test below
    # checks those on a trained model.
    oracle, noise = _oracle_against_noise(*trained)
    assert oracle["average_drop"] < noise["average_drop"]
    assert oracle["pointing"] == 1.0 > noise["pointing"]


@pytest.mark.slow
def test_oracle_box_map_beats_uniform_noise_on_all_four_metrics(tmp_path, digits_dir):
    train(TrainConfig(head="classifier", data_dir=digits_dir, image_size=SIZE, batch_size=32,
                      train_steps=400, learning_rate=0.003, log_every=100,
                      checkpoint_every=400, val_examples=32, summary_images=0,
                      model_dir=str(tmp_path)))
    model = applications.load_model(str(tmp_path / "model.keras"))
    dataset = load_dataset("digits", digits_dir, "test", image_size=(SIZE, SIZE))
    oracle, noise = _oracle_against_noise(model, dataset, count=32)
    assert oracle["deletion"] < noise["deletion"]
    assert oracle["insertion"] > noise["insertion"]
    assert oracle["average_drop"] < noise["average_drop"]
    assert oracle["pointing"] == 1.0 > noise["pointing"]


def test_savedmodel_methods_and_errors(trained, tmp_path):
    model, dataset = trained
    export = export_savedmodel(model, str(tmp_path), "adl", iterations=100,
                               methods=("l2caf", "l2caf_specific", "gradcam"))
    adapter = SavedModelAdapter(export)
    summary = evaluate(adapter, dataset, str(tmp_path / "sm"),
                       _config(methods=("l2caf", "l2caf_specific", "gradcam", "scorecam")))
    assert set(summary["methods"]) == {"l2caf", "l2caf_specific", "gradcam"}
    assert summary["settings"]["methods"]["gradcam"] == {"layer": KerasAdapter(model).explainer
                                                         .layer, "fixed_at_export": True}
    images, labels, _ = (t.numpy() for t in next(iter(dataset.evenly_spaced(4, 4))))
    for served, local in zip(adapter.maps(images, labels, "gradcam"),
                             KerasAdapter(model).maps(images, labels, "gradcam")):
        np.testing.assert_allclose(served, local, rtol=1e-5, atol=1e-6)
    # The solver settings fixed at export are recorded, as the export wrote them.
    recorded = read_settings(export)
    expected = KerasAdapter(model, SolverConfig(max_iterations=100)).method_settings("l2caf")
    assert recorded["solver"] == expected["solver"]
    assert recorded["solver"]["max_iterations"] == 100
    for method in ("l2caf", "l2caf_specific"):
        assert summary["settings"]["methods"][method] == {**expected, "fixed_at_export": True}
    assert summary["settings"]["model"]["export_versions"] == recorded["versions"]
    assert "not in this SavedModel" in adapter.supports("scorecam")
    failures = [(_config(metrics=("recall",)), "needs a retrieval net"),
                (_config(metrics=("deletion",)), "need a .keras model"),
                (_config(cam_threshold=2.0), r"--cam_threshold must be in \[0, 1\], got 2")]
    for config, message in failures:
        with pytest.raises(TfcafError, match=message):
            evaluate(adapter, dataset, str(tmp_path / "bad"), config)
        assert not (tmp_path / "bad").exists()  # a failed run leaves no folder


def test_sanity_check_table_and_plot(trained, tmp_path):
    # What the check measures is tested in tests/test_randomization_golden.py
    # (Quantus MPRT, and an edge detector against Grad-CAM); here its files.
    model, dataset = trained
    weights = [w.copy() for w in model.get_weights()]
    summary = evaluate(KerasAdapter(model, SolverConfig(max_iterations=100)), dataset, str(tmp_path),
                       _config(metrics=("sanity",), methods=("cam", "l2caf"), sanity_images=4,
                               sanity_stages=2))
    rows = json.loads((tmp_path / "metrics.json").read_text())["sanity"]
    assert rows == summary["sanity"]
    assert [r["layer"] for r in rows][0] == "logits" and len(rows) == 2
    assert {"cam", "l2caf"} <= set(rows[0]) and "spearman" in rows[0]["cam"]
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))
    assert (tmp_path / "sanity.png").exists()


def test_cli_solver_flags_layer_filter_and_versions_are_recorded(trained, tmp_path, digits_dir):
    import tensorflow as tf
    model, _ = trained
    model.save(str(tmp_path / "adl.keras"))
    env = dict(os.environ, TFCAF_NO_VENV_SWITCH="1")
    out = tmp_path / "eval"
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "bin", "evaluate"),
         f"--model={tmp_path / 'adl.keras'}", f"--data_dir={digits_dir}", "--max_images=4", "--batch_size=4", "--metric=iou",
         "--methods=l2caf,gradcam", "--solver=authors", "--restarts=2", "--iterations=7",
         "--solver_seed=3", f"--out_dir={out}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "metrics.json").read_text())
    settings = summary["settings"]
    layer = KerasAdapter(model).explainer.layer
    assert settings["methods"]["gradcam"] == {"layer": layer}
    l2caf = settings["methods"]["l2caf"]
    assert l2caf["layer"] == layer and l2caf["filter"] == "l2norm"
    assert l2caf["solver"] == SolverConfig.preset(
        "authors", restarts=2, max_iterations=7, seed=3).describe()
    assert l2caf["solver"]["optimizer"] == "adam" and l2caf["solver"]["horizon"] == 7
    assert settings["versions"]["tfcaf"] == importlib.metadata.version("tfcaf")
    assert settings["versions"]["tensorflow"] == tf.__version__
    assert settings["model"] == {"source": str(tmp_path / "adl.keras"), "format": "keras",
                                 "output": "logits"}
    assert set(summary["degenerate_maps"]) == {"l2caf", "gradcam"}
    report = (out / "report.md").read_text()
    assert f"- l2caf: layer `{layer}`; filter l2norm; solver " in report
    assert "max_iterations=7" in report and "restarts=2" in report
    assert f"tensorflow {tf.__version__}" in report


class _Planted:
    """A dataset of `images` with one box each (what `evaluate` reads)."""
    name, split, num_classes = "planted", "test", 3

    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def evenly_spaced_indices(self, count):
        return np.arange(min(count, len(self.images)))

    def from_indices(self, indices, batch_size):
        import tensorflow as tf
        positions = np.array(list(indices.as_numpy_iterator()), np.int64)
        images = self.images[positions]
        boxes = np.tile(np.array([[[2.0, 2.0, 20.0, 20.0]]], np.float32), (len(images), 1, 1))
        return tf.data.Dataset.from_tensor_slices(
            (images, np.zeros(len(images), np.int32), boxes)).batch(batch_size)


def test_degenerate_maps_are_counted_and_warned_once(tmp_path, caplog):
    import keras
    keras.utils.set_random_seed(0)
    inputs = keras.Input((24, 24, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    # Zero biases and a ReLU: a black image has all-zero feature maps, so
    # its CAM and Grad-CAM maps are zero by construction.
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv")(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x)))
    images = np.random.default_rng(0).uniform(0, 255, (7, 24, 24, 3)).astype(np.float32)
    images[[1, 4, 5]] = 0.0
    with caplog.at_level("WARNING", logger="tfcaf.evaluate"):
        summary = evaluate(KerasAdapter(model), _Planted(images), str(tmp_path),
                           EvalConfig(metrics=("iou",), methods=("cam", "gradcam"),
                                      batch_size=4))
    assert summary["degenerate_maps"] == {"cam": 3, "gradcam": 3}
    assert json.loads((tmp_path / "metrics.json").read_text())["degenerate_maps"] == \
        {"cam": 3, "gradcam": 3}
    assert [r.getMessage() for r in caplog.records if r.name == "tfcaf.evaluate"] == [
        f"warning: {m}: 3 of 7 maps are constant or non-finite (degenerate): their heatmaps "
        "are all zeros" for m in ("cam", "gradcam")]
    assert "3 degenerate (constant or non-finite) maps" in (tmp_path / "report.md").read_text()


def test_retrieval_net_methods_without_an_embedding_target_explain_self_similarity(tmp_path):
    model = models.build_model("tiny_resnet", "embedding", image_size=32, embedding_dim=8,
                               seed=0)
    images = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    labels = np.zeros(3, np.int32)
    keras_adapter = KerasAdapter(model)
    # Score-CAM explains no embedding by itself: the similarity to each
    # image's own embedding; Grad-CAM keeps its default (the embedding).
    assert keras_adapter.supports("scorecam") is None
    assert keras_adapter.method_settings("scorecam")["target"] == \
        "cosine similarity to the image's own embedding"
    assert "target" not in keras_adapter.method_settings("gradcam")
    wanted = tfcaf.explain(model, images, method="scorecam",
                           targets=tfcaf.Similarity(embeddings=model(images).numpy()))
    np.testing.assert_allclose(keras_adapter.maps(images, labels, "scorecam")[0], wanted.maps,
                               rtol=1e-5, atol=1e-7)
    export = export_savedmodel(model, str(tmp_path), "net", methods=("scorecam", "gradcam"))
    served = SavedModelAdapter(export)
    assert served.method_signatures == {"scorecam": "explain_scorecam_similarity",
                                        "gradcam": "explain_gradcam"}
    assert served.method_settings("scorecam")["target"] == \
        keras_adapter.method_settings("scorecam")["target"]
    for method in ("scorecam", "gradcam"):
        np.testing.assert_allclose(served.maps(images, labels, method)[0],
                                   keras_adapter.maps(images, labels, method)[0],
                                   rtol=1e-4, atol=1e-6)
