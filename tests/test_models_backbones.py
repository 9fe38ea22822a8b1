"""Backbones: GoogLeNet's architecture, the tiny CNN, ResNet-50 and VGG16-GAP
structure, in-model preprocessing, ADL placement, weights handling."""

import keras
import numpy as np
import pytest

from tfcaf.errors import TfcafError
from tfcaf.models import (ADL, LocalResponseNormalization, build_model,
                          googlenet, insert_adl, load_weights_file, tiny_resnet)

# Table 1 of Szegedy et al. 2015, typed again here as the reference:
# (input channels, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj).
TABLE_1 = [(192, 64, 96, 128, 16, 32, 32), (256, 128, 128, 192, 32, 96, 64),
           (480, 192, 96, 208, 16, 48, 64), (512, 160, 112, 224, 24, 64, 64),
           (512, 128, 128, 256, 24, 64, 64), (512, 112, 144, 288, 32, 64, 64),
           (528, 256, 160, 320, 32, 128, 128), (832, 256, 160, 320, 32, 128, 128),
           (832, 384, 192, 384, 48, 128, 128)]


def _conv_params(k, cin, cout):
    return k * k * cin * cout + cout


def _googlenet_params(classes):
    stem = _conv_params(7, 3, 64) + _conv_params(1, 64, 64) + _conv_params(3, 64, 192)
    modules = sum(_conv_params(1, c, n1) + _conv_params(1, c, r3) + _conv_params(3, r3, n3)
                  + _conv_params(1, c, r5) + _conv_params(5, r5, n5) + _conv_params(1, c, p)
                  for c, n1, r3, n3, r5, n5, p in TABLE_1)
    return stem + modules + 1024 * classes + classes


def _inbound(model):
    """Layer name -> names of the layers it reads, from the model's
    serialized graph, in topological order."""

    def walk(node, found):
        if isinstance(node, dict):
            if node.get("class_name") == "__keras_tensor__":
                found.append(node["config"]["keras_history"][0])
            for value in node.values():
                walk(value, found)
        elif isinstance(node, (list, tuple)):
            for value in node:
                walk(value, found)
        return found

    return {entry["name"]: walk(entry["inbound_nodes"], [])
            for entry in model.get_config()["layers"]}


def _weight_depth(model):
    """Longest chain of layers with weights (the paper's "22 layers deep")."""
    depth = {}
    for name, parents in _inbound(model).items():
        own = 1 if model.get_layer(name).weights else 0
        depth[name] = own + max((depth[p] for p in parents), default=0)
    return depth[model.layers[-1].name]


def _check_after(model, position, inserted):
    """`inserted` reads `position`, and replaced it for all its readers."""
    inbound = _inbound(model)
    assert inbound[inserted] == [position]
    readers = [name for name, parents in inbound.items() if position in parents]
    assert readers == [inserted]
    assert model.layers[-1].name == inserted or any(
        inserted in parents for parents in inbound.values())


def test_googlenet_matches_inception_v1():
    model = googlenet(input_shape=(224, 224, 3), classes=1000)
    expected = _googlenet_params(1000)
    assert expected == 6_998_552  # the BVLC GoogLeNet without auxiliary heads
    assert model.count_params() == expected
    counts = {}
    for layer in model.layers:
        counts[type(layer).__name__] = counts.get(type(layer).__name__, 0) + 1
    assert counts["Conv2D"] == 3 + 6 * 9
    assert counts["MaxPooling2D"] == 4 + 9
    assert counts["Concatenate"] == 9
    assert counts["LocalResponseNormalization"] == 2
    assert counts["Dense"] == 1 and counts["Dropout"] == 1
    assert _weight_depth(model) == 22
    shapes = {name: model.get_layer(name).output.shape[1:] for name in
              ["conv1_7x7_s2", "pool1_3x3_s2", "pool2_3x3_s2", "inception_3b_output",
               "pool3_3x3_s2", "inception_4e_output", "pool4_3x3_s2",
               "inception_5b_output"]}
    assert shapes == {"conv1_7x7_s2": (112, 112, 64), "pool1_3x3_s2": (56, 56, 64),
                      "pool2_3x3_s2": (28, 28, 192), "inception_3b_output": (28, 28, 480),
                      "pool3_3x3_s2": (14, 14, 480), "inception_4e_output": (14, 14, 832),
                      "pool4_3x3_s2": (7, 7, 832), "inception_5b_output": (7, 7, 1024)}
    assert isinstance(model.get_layer("pool1_norm1"), LocalResponseNormalization)
    with pytest.raises(ValueError, match="no ImageNet weights for GoogLeNet"):
        googlenet(weights="imagenet")


def test_tiny_resnet_size_and_feature_map():
    model = tiny_resnet()
    assert 200_000 < model.count_params() < 500_000
    assert model.output.shape[1:] == (12, 12, 128)
    assert model.layers[-1].name == "stage3_out"


def test_tiny_backbone_preprocessing_is_inside():
    keras.utils.set_random_seed(0)
    model = build_model("tiny_resnet", "classifier", num_classes=4, image_size=32)
    backbone = model.get_layer("backbone")
    assert backbone.layers[1].name == "preprocessing"
    reference = tiny_resnet((32, 32, 3))
    for layer in reference.layers[1:]:
        layer.set_weights(backbone.get_layer(layer.name).get_weights())
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(backbone(x).numpy(), reference(x / 255.0).numpy(),
                               rtol=1e-5, atol=1e-5)


def test_resnet50_adl_positions_and_caffe_preprocessing_inside():
    keras.utils.set_random_seed(0)
    model = build_model("resnet50", "adl", num_classes=3, image_size=64)
    backbone = model.get_layer("backbone")
    names = [layer.name for layer in backbone.layers]
    adl = [n for n in names if n.endswith("_adl")]
    assert adl == ["conv4_block1_out_adl", "conv5_block1_out_adl", "conv5_block3_out_adl"]
    for name in adl:
        layer = backbone.get_layer(name)
        assert isinstance(layer, ADL) and layer.gamma == 0.9 and layer.drop_rate == 0.75
        _check_after(backbone, name[:-len("_adl")], name)
    # ADL is the identity at inference, so the backbone equals Keras'
    # ResNet50 applied to keras' own caffe preprocessing.
    reference = keras.applications.ResNet50(include_top=False, weights=None,
                                            input_shape=(64, 64, 3))
    for layer in reference.layers[1:]:
        layer.set_weights(backbone.get_layer(layer.name).get_weights())
    x = np.random.default_rng(1).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    expected = reference(keras.applications.resnet50.preprocess_input(x.copy()))
    np.testing.assert_allclose(backbone(x).numpy(), expected.numpy(), rtol=1e-4, atol=1e-4)


def test_vgg16_gap_structure():
    classifier = build_model("vgg16_gap", "adl", num_classes=3, image_size=32)
    backbone = classifier.get_layer("backbone")
    assert backbone.layers[-1].name == "conv6"
    assert backbone.output.shape[1:] == (2, 2, 1024)
    assert [l.name for l in backbone.layers if isinstance(l, ADL)] == [
        "block3_pool_adl", "block4_conv3_adl", "block5_conv3_adl"]
    assert all(l.gamma == 0.8 for l in backbone.layers if isinstance(l, ADL))
    assert "block5_pool" not in [l.name for l in backbone.layers]
    acol = build_model("vgg16_gap", "acol", num_classes=3, image_size=32, acol_filters=8)
    assert acol.get_layer("backbone").layers[-1].name == "block5_conv3"
    assert acol.get_layer("backbone").output.shape[1:] == (2, 2, 512)


def test_insert_adl_in_any_model_and_unknown_position():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="c1")(inputs)
    x = keras.layers.Conv2D(4, 3, name="c2")(x)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    with_adl = insert_adl(model, ["c1"], drop_rate=0.5, gamma=0.7, seed=1)
    layer = with_adl.get_layer("c1_adl")
    assert layer.gamma == 0.7
    _check_after(with_adl, "c1", "c1_adl")
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    np.testing.assert_array_equal(with_adl(x).numpy(), model(x).numpy())
    with pytest.raises(ValueError, match="no layer 'c12'; did you mean c2, c1"):
        insert_adl(model, ["c1", "c12"])


def test_builder_rejects_unknown_names_and_missing_arguments():
    with pytest.raises(ValueError, match="unknown backbone 'resnet18'.*tiny_resnet"):
        build_model("resnet18", "classifier", num_classes=3)
    with pytest.raises(ValueError, match="unknown head 'softmax'.*classifier"):
        build_model("tiny_resnet", "softmax", num_classes=3)
    with pytest.raises(ValueError, match="needs num_classes"):
        build_model("tiny_resnet", "classifier")
    with pytest.raises(ValueError, match="no ImageNet weights.*'tiny_resnet'"):
        build_model("tiny_resnet", "classifier", num_classes=3, weights="imagenet")


TINY = dict(image_size=32, backbone_options={"filters": (4, 8, 8)})


def test_weights_file_round_trip_missing_and_mismatched(tmp_path):
    keras.utils.set_random_seed(0)
    model = build_model("tiny_resnet", "classifier", num_classes=3, **TINY)
    path = str(tmp_path / "m.weights.h5")
    model.save_weights(path)
    loaded = build_model("tiny_resnet", "classifier", num_classes=3, weights=path, **TINY)
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
    with pytest.raises(TfcafError, match="nothing.weights.h5"):
        build_model("tiny_resnet", "classifier", num_classes=3,
                    weights=str(tmp_path / "nothing.weights.h5"), **TINY)
    with pytest.raises(ValueError, match="m.weights.h5' does not match model"):
        build_model("tiny_resnet", "classifier", num_classes=4, weights=path, **TINY)


def test_weights_file_with_extra_arrays_is_rejected(tmp_path):
    def dense_stack(n):
        inputs = keras.Input((3,))
        x = inputs
        for i in range(n):
            x = keras.layers.Dense(3, name=f"d{i}")(x)
        return keras.Model(inputs, x, name=f"stack{n}")
    path = str(tmp_path / "two.keras")
    dense_stack(2).save(path)
    with pytest.raises(ValueError, match="two.keras' does not match model 'stack1'.*no place"):
        load_weights_file(dense_stack(1), path)
    load_weights_file(dense_stack(2), path)


def test_googlenet_loads_its_weights_file(tmp_path):
    keras.utils.set_random_seed(0)
    source = googlenet(include_top=False, input_shape=(32, 32, 3))
    path = str(tmp_path / "googlenet.weights.h5")
    source.save_weights(path)
    keras.utils.set_random_seed(1)
    loaded = googlenet(include_top=False, weights=path, input_shape=(32, 32, 3))
    x = np.random.default_rng(0).normal(0, 50, (1, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(loaded(x).numpy(), source(x).numpy())
    with pytest.raises(ValueError, match="googlenet.weights.h5' does not match"):
        googlenet(include_top=True, classes=10, weights=path, input_shape=(32, 32, 3))
