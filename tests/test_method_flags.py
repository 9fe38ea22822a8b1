"""--method_options (`tfcaf.cli.method_flags`): parsed to the registry's
option types, refused as one line before TensorFlow, and recorded with the
method's settings in metrics.json."""

import keras
import numpy as np
import pytest
from absl import flags

from tfcaf.cli import method_flags
from tfcaf.errors import TfcafError


def _options(*items):
    flag_values = flags.FlagValues()
    method_flags.define(flag_values=flag_values)
    flag_values(["prog", "--method_options=" + ",".join(items)] if items else ["prog"])
    return method_flags.method_options_flag(flag_values)


def test_values_take_the_type_of_the_default():
    assert _options() == {}
    assert _options("scorecam.batch_size=64", "rise.nb_samples=200",
                    "rise.preservation_probability=0.25", "occlusion.occlusion_value=-1") == {
        "scorecam": {"batch_size": 64},
        "rise": {"nb_samples": 200, "preservation_probability": 0.25},
        "occlusion": {"occlusion_value": -1.0}}
    assert isinstance(_options("occlusion.occlusion_value=1")["occlusion"]["occlusion_value"],
                      float)
    assert _options("smoothgrad.abs=True", "rise.variant=xplique") == {
        "smoothgrad": {"abs": True}, "rise": {"variant": "xplique"}}


@pytest.mark.parametrize("item,message", [
    ("lime.batch_size=3", r"METHOD one of l2caf, .*rise"),
    ("scorecam.batch_size", r"give METHOD.OPTION=VALUE"),
    ("scorecam.steps=3", r"scorecam has no option 'steps' \(its options: batch_size, "),
    ("gradcam.batch_size=3", r"gradcam has no option 'batch_size' \(its options: none\)"),
    ("scorecam.batch_size=1.5", r"'1.5' is not an integer"),
    ("scorecam.batch_size=0", r"option batch_size=0 must be an integer >= 1"),
    ("occlusion.occlusion_value=nan", r"occlusion_value=nan must be a finite number"),
    ("rise.masks=1", r"an array option; pass it from Python"),
    ("smoothgrad.abs=yes", r"'yes' is not true or false"),
    ("rise.variant=torch", r"option variant='torch' must be one of eclique, xplique"),
    ("l2caf.max_iterations=5", r"solved by L2-CAF's solver; use the solver flags"),
])
def test_bad_items_are_one_line_naming_the_item(item, message):
    with pytest.raises(TfcafError, match=f"^--method_options={item}: .*" + message):
        _options(item)


def test_adapter_runs_with_the_options_and_records_them():
    from tfcaf.evaluation import KerasAdapter
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="last_conv")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(x)))
    images = np.random.default_rng(0).uniform(0, 1, (2, 16, 16, 3)).astype(np.float32)
    adapter = KerasAdapter(model, method_options={"occlusion": {"patch_size": 8,
                                                                "patch_stride": 8}})
    assert adapter.method_settings("occlusion")["options"] == {
        "patch_size": 8, "patch_stride": 8, "occlusion_value": 0.0}
    # Defaults are recorded too: the registry's, as given there.
    from tfcaf.caf import METHODS
    assert adapter.method_settings("scorecam")["options"] == METHODS["scorecam"].options
    assert "options" not in adapter.method_settings("gradcam")
    raw, _ = adapter.maps(images, np.array([0, 1]), "occlusion")
    # Four 8x8 patches tile the image: each pixel holds its one patch's drop.
    assert len(np.unique(raw[0])) <= 4
    default_raw, _ = KerasAdapter(model).maps(images, np.array([0, 1]), "occlusion")
    assert len(np.unique(default_raw[0])) > 4


def test_visualize_passes_them_to_the_method_and_refuses_another_methods(tmp_path):
    from bad_input_harness import Case, run_cases, save_tiny_classifier
    save_tiny_classifier(str(tmp_path / "tiny.keras"))
    keras.utils.save_img(str(tmp_path / "a.png"),
                         np.random.default_rng(0).uniform(0, 255, (24, 24, 3)), scale=False)
    common = ["--model=tiny.keras", "--images=a.png", "--method=occlusion"]
    outcomes = run_cases("visualize", [
        Case("patches of 12", common + ["--out_dir=o1",
                                        "--method_options=occlusion.patch_size=12,"
                                        "occlusion.patch_stride=12"]),
        Case("another method's option", common + ["--out_dir=o2",
                                                  "--method_options=scorecam.batch_size=4"]),
    ], cwd=tmp_path)
    ok = outcomes["patches of 12"]
    assert ok.status == 0, ok.stderr
    # Four 12x12 patches tile the 24x24 input: at most four values.
    assert len(np.unique(np.load(tmp_path / "o1" / "a.npy"))) <= 4
    refused = outcomes["another method's option"]
    assert refused.status == 2
    assert refused.last_line == ("visualize: error: --method_options: options of scorecam, "
                                 "but --method=occlusion")
    assert not (tmp_path / "o2").exists()
