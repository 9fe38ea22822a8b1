"""TensorBoard summaries and validation during training."""

import logging
import os

import numpy as np
import tensorflow as tf

from tfcaf import render
from tfcaf.caf import Explainer
from tfcaf.metrics.retrieval import recall_at_k

log = logging.getLogger("tfcaf.train")


class Summaries:
    """Writes model_dir/train (losses, learning rate) and model_dir/validation
    (accuracy or recall@1, L2-CAF heatmaps) event files.

    Args:
        config: the `TrainConfig`.
        model: the model being trained.
        val_data: the validation `ImageDataset`.
        enabled: False on non-chief workers: nothing is computed or written.
    """

    def __init__(self, config, model, val_data, enabled=True):
        self.config, self.model, self.enabled = config, model, enabled
        self.val_batches = val_data.evenly_spaced(config.val_examples)
        self._explainer = None
        if enabled:
            self.train_writer = tf.summary.create_file_writer(
                os.path.join(config.model_dir, "train"))
            self.val_writer = tf.summary.create_file_writer(
                os.path.join(config.model_dir, "validation"))

    def scalars(self, step, logs, learning_rate):
        """Writes each training metric of `logs` ({"loss": ..., ACoL also
        "loss_a", "loss_b"}) and the learning rate at `step`."""
        if not self.enabled:
            return
        with self.train_writer.as_default(step=step):
            for name, value in logs.items():
                tf.summary.scalar(name, value)
            tf.summary.scalar("learning_rate", float(np.asarray(learning_rate)))

    def _outputs(self):
        images, labels, outputs = [], [], []
        for x, y, _ in self.val_batches:
            outputs.append(self.model(x, training=False).numpy())
            labels.append(y.numpy())
            if len(images) < self.config.summary_images:
                images.extend(x.numpy()[: self.config.summary_images - len(images)])
        return np.concatenate(outputs), np.concatenate(labels), np.array(images)

    def validation(self, step, images=True):
        """Validation metric(s) at `step`; returns {"accuracy": ...} or
        {"recall@1": ...} (empty on non-chief workers)."""
        if not self.enabled:
            return {}
        outputs, labels, pixels = self._outputs()
        if self.config.metric_learning:
            metrics = {"recall@1": float(recall_at_k(outputs, labels, ks=(1,))[1])}
        else:
            metrics = {"accuracy": float(np.mean(outputs.argmax(-1) == labels))}
        with self.val_writer.as_default(step=step):
            for name, value in metrics.items():
                tf.summary.scalar(name, value)
            if images and self.config.summary_images:
                tf.summary.image("l2caf", self._heatmaps(pixels), step=step,
                                 max_outputs=len(pixels))
        log.info("step %d validation %s", step,
                 "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        return metrics

    def _heatmaps(self, pixels):
        """(n, H, W, 3) uint8 overlays of class-oblivious L2-CAF."""
        if self._explainer is None:
            self._explainer = Explainer(self.model)
        heatmaps = self._explainer.explain(pixels, "l2caf", max_iterations=300).heatmaps
        rgb = np.clip(pixels, 0, 255).astype(np.uint8)
        return np.stack([render.overlay(p, h) for p, h in zip(rgb, heatmaps)])
