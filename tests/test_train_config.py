"""Flag checks of bin/train and the experiment flagfiles."""

import glob
import os

import pytest
from tfcaf.cli import train_flags
from tfcaf.training import TrainConfig, validate
from tfcaf.training.loop import build_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES = {"digits": 10, "cub": 200, "imagenet": 1000}
FLAGFILES = sorted(glob.glob(os.path.join(REPO, "flags", "*.flags")))


@pytest.mark.parametrize("changes,replicas,message", [
    (dict(loss="npairs", head="embedding", batch_size=7), 1, "--loss=npairs.*--batch_size=7"),
    (dict(loss="npairs", head="embedding", batch_size=6), 2, "--batch_size=6 gives 3"),
    (dict(loss="triplet", head="embedding", batch_size=10), 1, "--images_per_class=4"),
    (dict(loss="triplet", head="classifier"), 1, "use --head=embedding"),
    (dict(loss="softmax", head="embedding"), 1, "--loss=triplet or npairs"),
    (dict(batch_size=33), 2, "--batch_size=33 must split evenly over 2"),
    (dict(train_steps=0), 1, r"--train_steps=0: must be an integer >= 1"),
    (dict(train_steps=2.5), 1, r"--train_steps=2.5: must be an integer"),
    (dict(val_examples=-1), 1, r"--val_examples=-1: must be an integer >= 0"),
    (dict(optimizer="lamb"), 1, "--optimizer=lamb"),
    (dict(margin=-1.0), 1, r"--margin=-1.0: must be a number > 0"),
    (dict(margin=0.0), 1, r"--margin=0.0: must be a number > 0"),
    (dict(margin=float("nan")), 1, r"--margin=nan"),
    (dict(learning_rate=-0.1), 1, r"--learning_rate=-0.1: must be in \(0, 1\] for --optimizer=adam"),
    (dict(learning_rate=float("nan")), 1, r"--learning_rate=nan"),
    (dict(learning_rate=float("inf"), optimizer="sgd"), 1, r"--learning_rate=inf: .*\(0, 10\]"),
    (dict(learning_rate=1.5, optimizer="rmsprop"), 1, r"\(0, 1\] for --optimizer=rmsprop"),
    (dict(learning_rate=20.0, optimizer="momentum"), 1, r"\(0, 10\] for --optimizer=momentum"),
    (dict(drop_rate=1.5), 1, r"--drop_rate=1.5: must be a number in \[0, 1\]"),
    (dict(gamma=-0.1), 1, r"--gamma=-0.1"),
    (dict(delta=float("nan")), 1, r"--delta=nan"),
    (dict(seed=-1), 1, r"--seed=-1: must be an integer in \[0, 2\*\*32\)"),
    (dict(image_size=0), 1, r"--image_size=0"),
    (dict(embedding_dim=True), 1, r"--embedding_dim=True: must be an integer"),
    (dict(worker_timeout_s=0), 1, r"--worker_timeout_s=0: must be a number of seconds > 0"),
])
def test_incompatible_flags_are_rejected(changes, replicas, message):
    with pytest.raises(ValueError, match=message):
        validate(TrainConfig(**changes), replicas)


@pytest.mark.parametrize("changes", [
    dict(learning_rate=1.0), dict(learning_rate=10.0, optimizer="sgd"), dict(margin=1e-3),
    dict(drop_rate=0.0, gamma=1.0, delta=1.0), dict(seed=2 ** 32 - 1), dict(val_examples=0),
    dict(worker_timeout_s=0.5),
])
def test_range_edges_are_accepted(changes):
    validate(TrainConfig(**changes))


def test_paper_defaults():
    triplet = TrainConfig(loss="triplet", head="embedding")
    npairs = TrainConfig(loss="npairs", head="embedding")
    assert triplet.embedding_normalized and not npairs.embedding_normalized
    assert triplet.splits == ("retrieval_train", "retrieval_test")
    assert TrainConfig().train_steps == 5000 and TrainConfig().margin == 0.2


def test_there_are_flagfiles_for_every_experiment_family():
    names = {os.path.basename(f) for f in FLAGFILES}
    for family in ("cub_triplet_resnet50", "cub_triplet_googlenet", "cub_npairs_resnet50",
                   "cub_npairs_googlenet", "cub_adl_resnet50", "cub_acol_vgg16",
                   "imagenet_adl_resnet50", "imagenet_acol_vgg16", "digits_triplet",
                   "digits_npairs", "digits_adl", "digits_acol"):
        assert f"{family}.flags" in names


@pytest.mark.parametrize("flagfile", FLAGFILES, ids=os.path.basename)
def test_flagfile_parses_and_builds_its_model(flagfile):
    config = train_flags.parse_flagfile(flagfile)
    validate(config)
    assert config.model_dir.startswith("runs/")
    # weights=None: no download here; the architecture is the flagfile's.
    config.weights = None
    size = config.image_size or 96
    classes = None if config.metric_learning else CLASSES[config.dataset]
    model = build_model(config, classes, (size, size))
    expected = config.embedding_dim if config.metric_learning else classes
    assert model.output.shape[-1] == expected
    if config.metric_learning:
        assert model.layers[-1].name == "embedding"


def test_resuming_with_other_settings_is_refused(tmp_path):
    import dataclasses
    import json

    from tfcaf.training.loop import _check_same_run
    config = TrainConfig(model_dir=str(tmp_path))
    (tmp_path / "train_config.json").write_text(json.dumps(dataclasses.asdict(config)))
    _check_same_run(str(tmp_path / "train_config.json"), config)
    changed = dataclasses.replace(config, batch_size=64, seed=3, log_every=7)
    with pytest.raises(ValueError, match=r"--batch_size=64 \(was 32\), --seed=3 \(was 0\); use another"):
        _check_same_run(str(tmp_path / "train_config.json"), changed)
