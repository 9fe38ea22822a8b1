"""The training loop: distributed steps, checkpoints, resume, summaries."""

import dataclasses
import json
import logging
import os
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

from tfcaf import data as tfcaf_data
from tfcaf.durations import as_clock
from tfcaf.errors import TfcafError
from tfcaf import losses, models
from tfcaf.distribute import strategy as strategies
from tfcaf.training import inputs
from tfcaf.training.config import validate
from tfcaf.training.model_dir import RunLock
from tfcaf.training.summaries import Summaries

log = logging.getLogger("tfcaf.train")


def _learning_rate(config):
    rate, steps = config.learning_rate, config.train_steps
    if config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(rate, steps)
    if config.lr_schedule == "linear":
        return keras.optimizers.schedules.PolynomialDecay(rate, steps, 0.0)
    if config.lr_schedule == "step":
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            [steps // 2, (3 * steps) // 4], [rate, rate * 0.1, rate * 0.01])
    return rate


def _optimizer(config):
    rate = _learning_rate(config)
    return {"adam": lambda: keras.optimizers.Adam(rate),
            # Keras' decoupled weight decay 0.004: what ViTs train with.
            "adamw": lambda: keras.optimizers.AdamW(rate),
            "sgd": lambda: keras.optimizers.SGD(rate),
            "momentum": lambda: keras.optimizers.SGD(rate, momentum=0.9),
            "rmsprop": lambda: keras.optimizers.RMSprop(rate)}[config.optimizer]()


def compiled_loss(config):
    """The Keras loss the model is compiled with: its `train_step` is the
    training path of `fit` and of this loop alike (ACoL: `ACoLModel`'s own
    step, erasing with the ground-truth class, docs/method.md §3)."""
    if config.loss == "triplet":
        return losses.TripletSemiHardLoss(margin=config.margin)
    if config.loss == "npairs":
        return losses.NpairsEmbeddingLoss()
    return models.training_loss(config.head)


class TrainingInterrupted(TfcafError):
    """Ctrl-C during training; the last checkpoint is intact."""


def build_model(config, num_classes, image_size):
    """The model `config` describes (see `tfcaf.models.build_model`)."""
    return models.build_model(
        config.backbone, config.head, num_classes=num_classes,
        embedding_dim=config.embedding_dim,
        normalize_embedding=config.embedding_normalized, image_size=image_size,
        weights=config.weights, drop_rate=config.drop_rate, gamma=config.gamma,
        delta=config.delta, acol_filters=config.acol_filters, seed=config.seed)


class Trainer:
    """One training run of `config` (see `tfcaf.training.TrainConfig`).

    The chief holds `model_dir`'s `RunLock` from construction until
    `close()` (`train` does both), so a second run on the folder is refused
    before it writes anything.
    """

    def __init__(self, config):
        self.config = config
        validate(config)  # before waiting for other workers
        self.strategy = strategies.make_strategy(config.strategy, config.worker_timeout_s)
        validate(config, self.strategy.num_replicas_in_sync)
        self.chief = strategies.is_chief(self.strategy)
        self.lock = RunLock(config.model_dir).acquire() if self.chief else None
        try:
            self._build(config)
        except BaseException:
            if self.lock is not None:
                self.lock.release(discard=True)
            raise

    def _build(self, config):
        train_split, val_split = config.splits
        load = lambda split: tfcaf_data.load_dataset(
            config.dataset, config.data_dir, split, image_size=config.image_size,
            skip_bad_images=config.skip_bad_images)
        self.train_data = load(train_split)
        self.val_data = load(val_split)
        inputs.index_batches(self.train_data, config)  # rejects impossible batches now
        keras.utils.set_random_seed(config.seed)
        with self.strategy.scope():
            self.model = build_model(
                config, None if config.metric_learning else self.train_data.num_classes,
                self.train_data.image_size)
            self.optimizer = _optimizer(config)
            self.optimizer.build(self.model.trainable_variables)
            self.model.compile(optimizer=self.optimizer, loss=compiled_loss(config))
        # Random layers (ADL) draw from seed generators whose state is not a
        # model weight; it is checkpointed too so a resumed run draws alike.
        self.checkpoint = tf.train.Checkpoint(
            model=self.model, optimizer=self.optimizer,
            seed_states=[g.state for g in _seed_generators(self.model)])
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, strategies.checkpoint_dir(self.strategy, config.model_dir),
            max_to_keep=config.max_checkpoints)
        self.summaries = Summaries(config, self.model, self.val_data,
                                   enabled=self.chief)

    def close(self):
        """Releases the model_dir lock (chief)."""
        if self.lock is not None:
            self.lock.release()

    @property
    def step(self):
        return int(self.optimizer.iterations.numpy())

    def restore(self):
        """Resumes from the chief's last checkpoint, if any (every worker
        restores the same one); returns the step."""
        config_file = os.path.join(self.config.model_dir, "train_config.json")
        latest = tf.train.latest_checkpoint(os.path.join(self.config.model_dir, "checkpoints"))
        if latest:
            _check_same_run(config_file, self.config)
            self.checkpoint.restore(latest).assert_existing_objects_matched()
            log.info("resumed from %s at step %d", latest, self.step)
        elif self.chief:
            with open(config_file, "w") as f:
                json.dump(dataclasses.asdict(self.config), f, indent=2, sort_keys=True)
        return self.step

    def save_checkpoint(self, step):
        """Saves unless a weight became NaN/Inf (then the last good
        checkpoint stays the latest and the run stops)."""
        if not all(np.isfinite(v.numpy()).all() for v in self.model.trainable_variables):
            raise FloatingPointError(
                f"weights became NaN/Inf by step {step}; not checkpointed; lower --learning_rate")
        self.manager.save(checkpoint_number=step)

    def _train_step_fn(self):
        """tf.function batch -> logs {"loss": ..., ...}: the model's own
        `train_step` on each replica, metrics averaged over replicas (means
        since the last `reset_metrics`)."""
        @tf.function
        def train_step(batch):
            logs = self.strategy.run(self.model.train_step, args=(batch,))
            return {name: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
                    for name, value in logs.items()}
        return train_step

    def run(self):
        """Trains to `train_steps`, checkpointing; returns the final metrics.

        Raises:
            TrainingInterrupted: Ctrl-C; says the step and how to resume.
            FloatingPointError: the loss or a weight became NaN/Inf.
        """
        start = self.restore()
        try:
            metrics = self._train_from(start)
        except KeyboardInterrupt:
            saved = self.manager.latest_checkpoint
            since = f"; it restarts from {os.path.basename(saved)}" if saved else ""
            raise TrainingInterrupted(f"interrupted at step {self.step}; resume with the "
                                      f"same command{since}") from None
        self.save_final()
        return dict(step=self.step, **metrics)

    def _train_from(self, start):
        config = self.config
        batches = self.strategy.experimental_distribute_dataset(
            inputs.training_batches(self.train_data, config, start))
        train_step = self._train_step_fn()
        clock, clock_step, metrics = time.time(), start, None
        for batch in batches:
            logs = {name: float(value) for name, value in train_step(batch).items()}
            step = self.step
            if not np.isfinite(logs["loss"]):
                raise FloatingPointError(
                    f"loss became {logs['loss']} by step {step}; lower --learning_rate")
            if step % config.log_every == 0 or step == config.train_steps:
                rate = (step - clock_step) / max(time.time() - clock, 1e-9)
                self.summaries.scalars(step, logs, self.optimizer.learning_rate)
                log.info("step %d/%d  %s  %.2f steps/s  ETA %s", step, config.train_steps,
                         "  ".join(f"{k} {v:.4f}" for k, v in logs.items()), rate,
                         as_clock((config.train_steps - step) / max(rate, 1e-9)))
                self.model.reset_metrics()
                clock, clock_step = time.time(), step
            if step % config.checkpoint_every == 0 or step == config.train_steps:
                self.save_checkpoint(step)
                metrics = self.summaries.validation(step)
        if metrics is None:  # resumed a finished run
            metrics = self.summaries.validation(self.step, images=False)
        return metrics

    def save_final(self):
        """Writes model_dir/model.keras (chief only) via a temporary file, so
        an interrupted save never leaves a partial model.keras."""
        if not self.chief:
            shutil.rmtree(strategies.checkpoint_dir(self.strategy, self.config.model_dir),
                          ignore_errors=True)
            return
        final = os.path.join(self.config.model_dir, "model.keras")
        temporary = os.path.join(self.config.model_dir, f".model-{os.getpid()}.keras")
        try:
            self.model.save(temporary)
            os.replace(temporary, final)
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
        log.info("saved %s", final)


# Settings that fix the data order, the schedule or the model: a resumed run
# must keep them, or it would silently become a different run.
_RUN_DEFINING = ("dataset", "backbone", "head", "loss", "margin", "embedding_dim",
                 "normalize_embedding", "images_per_class", "train_steps", "batch_size",
                 "optimizer", "learning_rate", "lr_schedule", "image_size", "seed", "augment",
                 "drop_rate", "gamma", "delta", "acol_filters")


def _check_same_run(config_file, config):
    if not os.path.exists(config_file):
        return
    with open(config_file) as f:
        saved = json.load(f)
    changed = [f"--{k}={getattr(config, k)} (was {saved[k]})" for k in _RUN_DEFINING
               if k in saved and saved[k] != getattr(config, k)]
    if changed:
        raise TfcafError(f"{config.model_dir} holds a run with other settings: "
                         f"{', '.join(changed)}; use another --model_dir")


def _seed_generators(model):
    """The keras.random.SeedGenerator of every layer, nested models included."""
    return [layer.seed_generator for layer in _all_layers(model)
            if isinstance(getattr(layer, "seed_generator", None), keras.random.SeedGenerator)]


def _all_layers(model):
    """Every layer under `model`, depth first, through the public `.layers`."""
    for layer in getattr(model, "layers", ()):
        yield layer
        yield from _all_layers(layer)


def train(config):
    """Runs (or resumes) the training described by `config`; returns a dict
    with the final step and validation metrics.

    Raises:
        TfcafError: bad settings or data, `model_dir` in use by another run
            or an existing file, or Ctrl-C (`TrainingInterrupted`).
    """
    trainer = Trainer(config)
    try:
        return trainer.run()
    finally:
        trainer.close()
