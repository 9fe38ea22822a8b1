"""Training settings and the checks that reject incompatible ones early."""

import dataclasses
import math
import numbers

from tfcaf.distribute import STRATEGIES
from tfcaf.errors import TfcafError

LOSSES = ("softmax", "triplet", "npairs")
OPTIMIZERS = ("adam", "adamw", "sgd", "momentum", "rmsprop")
SCHEDULES = ("constant", "cosine", "linear", "step")


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run needs; `bin/train` fills it from flags.

    Attributes (flag names are the same):
        dataset, data_dir: see `tfcaf.data.load_dataset`.
        backbone, weights, head, embedding_dim, image_size: see
            `tfcaf.models.build_model`.
        loss: "softmax" (classifier/adl/acol heads), "triplet" or "npairs"
            (embedding head).
        margin: triplet margin (0.2 in the paper).
        normalize_embedding: None = on for triplet, off for N-pair (paper).
        drop_rate, gamma: ADL (gamma None = the backbone's default).
        delta, acol_filters: ACoL erasing threshold and branch width.
        images_per_class: K of the P x K triplet batches.
        train_steps: optimizer updates of the whole run.
        batch_size: global batch, split across replicas.
        optimizer, learning_rate, lr_schedule: the schedule spans
            `train_steps` ("step": x0.1 at 50% and 75%).
        model_dir: checkpoints, TensorBoard logs and the final model.keras.
        strategy: "default", "mirrored" or "multi_worker" (TF_CONFIG).
        seed: fixes the model initialisation, batches and augmentation.
        log_every, checkpoint_every: in steps; validation and heatmap
            summaries run at every checkpoint.
        max_checkpoints: checkpoints kept.
        augment: random crop and flip for training.
        val_examples: size of the validation slice.
        summary_images: L2-CAF heatmaps written to TensorBoard.
        skip_bad_images: log and skip unreadable images.
        worker_timeout_s: seconds a multi-worker task waits for the others
            (not part of the run: a resumed run may change it).

    `validate` gives every numeric field's valid range.
    """
    dataset: str = "digits"
    data_dir: str | None = None
    backbone: str = "tiny_resnet"
    weights: str | None = None
    head: str = "classifier"
    loss: str = "softmax"
    margin: float = 0.2
    embedding_dim: int = 128
    normalize_embedding: bool | None = None
    drop_rate: float = 0.75
    gamma: float | None = None
    delta: float = 0.6
    acol_filters: int = 1024
    images_per_class: int = 4
    train_steps: int = 5000
    batch_size: int = 32
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    lr_schedule: str = "cosine"
    image_size: int | None = None
    model_dir: str = "runs/default"
    strategy: str = "default"
    seed: int = 0
    log_every: int = 50
    checkpoint_every: int = 500
    max_checkpoints: int = 3
    augment: bool = True
    val_examples: int = 512
    summary_images: int = 4
    skip_bad_images: bool = False
    worker_timeout_s: float = 600.0

    @property
    def metric_learning(self):
        return self.loss in ("triplet", "npairs")

    @property
    def embedding_normalized(self):
        if self.normalize_embedding is not None:
            return self.normalize_embedding
        return self.loss == "triplet"

    @property
    def splits(self):
        """(train split, validation split) of the dataset."""
        if self.metric_learning:
            return "retrieval_train", "retrieval_test"
        return {"digits": ("train", "val"), "cub": ("train", "test"),
                "imagenet": ("train", "val")}.get(self.dataset, (None, None))


def _require(condition, message):
    if not condition:
        raise TfcafError(message)


# Fields that count something: at least 1, or at least 0.
_COUNTS = {"embedding_dim": 1, "acol_filters": 1, "images_per_class": 1, "train_steps": 1,
           "batch_size": 1, "log_every": 1, "checkpoint_every": 1, "max_checkpoints": 1,
           "val_examples": 0, "summary_images": 0}
# Thresholds and probabilities of the ADL and ACoL layers.
_FRACTIONS = ("drop_rate", "gamma", "delta")
# The largest sensible initial learning rate. Adam and RMSprop move every
# weight by up to about the rate per step whatever the gradient's scale, so
# above 1 each step is larger than the weights themselves (He-initialised,
# |w| << 1). SGD's step scales with the gradient; the largest rates in use
# come from the linear scaling rule (Goyal et al. 2017: 0.1 x batch/256,
# 3.2 at batch 8192), so 10 leaves room.
MAX_LEARNING_RATE = {"adam": 1.0, "adamw": 1.0, "rmsprop": 1.0, "sgd": 10.0, "momentum": 10.0}


def _is_number(value, integer=False):
    """A finite real (an integer when `integer`); bools are not numbers here."""
    if isinstance(value, bool):
        return False
    if integer:
        return isinstance(value, numbers.Integral)
    return isinstance(value, numbers.Real) and math.isfinite(value)


def _check_numbers(config):
    """Every numeric field within its range (NaN and Inf refused)."""
    for name, low in _COUNTS.items():
        value = getattr(config, name)
        _require(_is_number(value, integer=True) and value >= low,
                 f"--{name}={value!r}: must be an integer >= {low}")
    if config.image_size is not None:
        _require(_is_number(config.image_size, integer=True) and config.image_size >= 1,
                 f"--image_size={config.image_size!r}: must be an integer >= 1 (pixels)")
    _require(_is_number(config.seed, integer=True) and 0 <= config.seed < 2 ** 32,
             f"--seed={config.seed!r}: must be an integer in [0, 2**32)")
    for name in _FRACTIONS:
        value = getattr(config, name)
        if value is not None:
            _require(_is_number(value) and 0 <= value <= 1,
                     f"--{name}={value!r}: must be a number in [0, 1]")
    # Margin 0 (or less) is met by an embedding collapsed to one point.
    _require(_is_number(config.margin) and config.margin > 0,
             f"--margin={config.margin!r}: must be a number > 0 (the triplet loss of a "
             f"collapsed embedding is max(margin, 0))")
    top = MAX_LEARNING_RATE.get(config.optimizer)
    if top is not None:
        _require(_is_number(config.learning_rate) and 0 < config.learning_rate <= top,
                 f"--learning_rate={config.learning_rate!r}: must be in (0, {top:g}] for "
                 f"--optimizer={config.optimizer}")
    _require(_is_number(config.worker_timeout_s) and config.worker_timeout_s > 0,
             f"--worker_timeout_s={config.worker_timeout_s!r}: must be a number of seconds > 0")


def validate(config, replicas=1):
    """Raises TfcafError naming the offending flags and the valid range;
    `replicas` is the number of devices the global batch is split over."""
    _require(config.loss in LOSSES, f"--loss={config.loss}: choose one of {LOSSES}")
    _require(config.strategy in STRATEGIES,
             f"--strategy={config.strategy}: choose one of {STRATEGIES}")
    _require(config.optimizer in OPTIMIZERS,
             f"--optimizer={config.optimizer}: choose one of {OPTIMIZERS}")
    _require(config.lr_schedule in SCHEDULES,
             f"--lr_schedule={config.lr_schedule}: choose one of {SCHEDULES}")
    _check_numbers(config)
    if config.metric_learning:
        _require(config.head == "embedding",
                 f"--loss={config.loss} trains an embedding: use --head=embedding, "
                 f"not --head={config.head}")
    else:
        _require(config.head != "embedding",
                 "--head=embedding needs a metric-learning loss: --loss=triplet or npairs")
    _require(config.batch_size % replicas == 0,
             f"--batch_size={config.batch_size} must split evenly over {replicas} replicas")
    per_replica = config.batch_size // replicas
    if config.loss == "npairs":
        _require(per_replica % 2 == 0,
                 f"--loss=npairs needs (anchor, positive) pairs: --batch_size={config.batch_size} "
                 f"gives {per_replica} images per replica, which is odd")
    if config.loss == "triplet":
        _require(per_replica % config.images_per_class == 0,
                 f"--loss=triplet: --batch_size={config.batch_size} over {replicas} replica(s) "
                 f"is not a multiple of --images_per_class={config.images_per_class}")
        _require(config.images_per_class >= 2,
                 "--loss=triplet needs --images_per_class >= 2 (positive pairs)")
