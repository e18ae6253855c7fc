"""Training callbacks: stop at a step, progress line with ETA, TensorBoard scalars and images."""

import sys
import time
from typing import Any, Dict, Optional, TextIO

import keras
import numpy as np
import tensorflow as tf

from personlab_tf import keys


class StopAtStep(keras.callbacks.Callback):
    """Stops training once the optimizer's step counter reaches `num_steps`."""

    def __init__(self, num_steps: int):
        super().__init__()
        self.num_steps = num_steps

    def on_train_batch_end(self, batch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        if int(self.model.optimizer.iterations.numpy()) >= self.num_steps:
            self.model.stop_training = True


class Progress(keras.callbacks.Callback):
    """After the first step and every `every` steps: the step, the loss terms (means since the last
    checkpoint interval began), the model's learned values (LossModel.learned_values, e.g. the part
    parser's loss log-variances), steps/s and the estimated time left.

    Also writes the loss terms, the learned values ("learned/..."), the learning rate and steps/s as
    TensorBoard scalars when `writer` is given.
    """

    def __init__(self, num_steps: int, every: int, writer: Optional[tf.summary.SummaryWriter] = None,
                 stream: TextIO = sys.stdout):
        super().__init__()
        self.num_steps, self.every, self.writer, self.stream = num_steps, every, writer, stream
        self._last_time = self._last_step = None

    def on_train_begin(self, logs: Optional[Dict[str, Any]] = None) -> None:
        self._last_time, self._last_step = time.perf_counter(), self._step()
        self._first_step = self._last_step

    def _step(self):
        return int(self.model.optimizer.iterations.numpy())

    def on_train_batch_end(self, batch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        step = self._step()
        if step % self.every and step < self.num_steps and step != self._first_step + 1:
            return
        now = time.perf_counter()
        rate = (step - self._last_step) / max(now - self._last_time, 1e-9)
        self._last_time, self._last_step = now, step
        logs = {k: float(v) for k, v in (logs or {}).items()}
        eta = (self.num_steps - step) / rate if rate > 0 else float("inf")
        learned = self.model.learned_values()
        terms = " ".join(f"{k}={v:.4f}" for k, v in list(logs.items()) + list(learned.items())
                         if not k.startswith(keys.Prediction.AUXILIARY_PREFIX[:-1]))
        print(f"step {step}/{self.num_steps} {terms} {rate:.2f} steps/s ETA {format_seconds(eta)}",
              file=self.stream, flush=True)
        if self.writer is not None:
            learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            with self.writer.as_default(step=step):
                for key, value in logs.items():
                    tf.summary.scalar(f"loss/{key}", value)
                for key, value in learned.items():
                    tf.summary.scalar(f"learned/{key}", value)
                tf.summary.scalar("learning_rate", learning_rate)
                tf.summary.scalar("steps_per_second", rate)


def format_seconds(seconds: float) -> str:
    """'1h02m03s' style duration; '?' when unknown."""
    if not np.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def overlay_predictions(images: tf.Tensor, keypoint_maps: tf.Tensor, person_maps: tf.Tensor) -> tf.Tensor:
    """Images [B, H, W, 3] uint8 with a keypoint probability map (red) and a person probability map (green).

    The maps [B, h, w, 1] (probabilities, e.g. a model's `summary_maps`) are resized to the image size.
    Returns float32 in [0, 1].
    """
    size = tf.shape(images)[1:3]
    heat = tf.image.resize(keypoint_maps, size)
    seg = tf.image.resize(person_maps, size)
    base = tf.cast(images, tf.float32) / 255.0
    colour = tf.concat([heat, seg, tf.zeros_like(heat)], axis=-1)
    alpha = tf.maximum(heat, seg) * 0.6
    return base * (1.0 - alpha) + colour * alpha


class ImageSummaries(keras.callbacks.Callback):
    """Every `every` steps: TensorBoard images of a fixed batch with the model's `summary_maps` (keypoint
    heatmaps and person probability) drawn over it."""

    def __init__(self, images: tf.Tensor, every: int, writer: tf.summary.SummaryWriter, max_outputs: int = 2):
        super().__init__()
        self.images, self.every, self.writer, self.max_outputs = images, every, writer, max_outputs

    def on_train_batch_end(self, batch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        step = int(self.model.optimizer.iterations.numpy())
        if step % self.every:
            return
        outputs = self.model(self.images, training=False)
        picture = overlay_predictions(self.images, *self.model.summary_maps(outputs))
        with self.writer.as_default(step=step):
            tf.summary.image("predictions", picture, max_outputs=self.max_outputs)
