"""The training and evaluation steps shared by the tasks' Keras models (tasks/*/model.py).

A model subclasses `LossModel`, builds its functional graph in `__init__`, calls `track_losses` with its
loss keys (keys.Loss.TOTAL included) and implements `compute_losses(predictions, targets)` returning this
replica's share of every term (losses.replica_weighted_mean) and `person_probability(outputs)`. Training
data: `(images, targets)` pairs or single dicts holding keys.Sample.IMAGE and the target keys.
"""

from typing import Any, Dict, List, Sequence, Tuple

import keras
import tensorflow as tf

from personlab_tf import keys
from personlab_tf.losses import global_sum


class LossModel(keras.Model):
    """keras.Model whose `fit` / `evaluate` steps minimise and report `compute_losses` (see module).

    Subclasses set `prediction_keys`, the outputs kept by `inference_model`, and a `get_config` whose
    items are their constructor's arguments.
    """

    prediction_keys = ()

    def track_losses(self, loss_keys: Sequence[str]) -> None:
        """Creates a keras.metrics.Mean per loss term (metric names cannot hold "/": "_" instead)."""
        self.loss_trackers = {key: keras.metrics.Mean(name=key.replace("/", "_")) for key in loss_keys}

    def compute_losses(self, predictions: Dict[str, tf.Tensor], targets: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        """{loss key: this replica's share} of a batch; keys.Loss.TOTAL is what is minimised."""
        raise NotImplementedError

    def person_probability(self, outputs: Dict[str, tf.Tensor]) -> tf.Tensor:
        """[B, h, w, 1] probability that a cell shows a person (TensorBoard pictures)."""
        raise NotImplementedError

    def learned_values(self) -> Dict[str, float]:
        """{name: float} learned scalars that training reports beside the losses (progress lines and
        TensorBoard, train/callbacks.Progress), e.g. the part parser's loss log-variances; none by default."""
        return {}

    def summary_maps(self, outputs: Dict[str, tf.Tensor]) -> Tuple[tf.Tensor, tf.Tensor]:
        """(keypoint probability [B, h, w, 1] = max_k sigmoid(heatmap logit k), person probability
        [B, h, w, 1]) for TensorBoard images."""
        logits = tf.cast(outputs[keys.Prediction.HEATMAP_LOGITS], tf.float32)
        return tf.reduce_max(tf.sigmoid(logits), axis=-1, keepdims=True), self.person_probability(outputs)

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "LossModel":
        return cls(**config)

    def inference_model(self) -> keras.Model:
        """A functional model sharing this one's weights with only the `prediction_keys` outputs (no
        training-only heads)."""
        return keras.Model(self.input, {k: self.output[k] for k in self.prediction_keys},
                           name=f"{self.name}_inference")

    @property
    def metrics(self) -> List[keras.metrics.Metric]:
        return list(self.loss_trackers.values())

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Builds the optimizer only: the graph and the loss metrics exist from construction.

        Keras' default reduces the first batch across replicas to trace a symbolic build, which
        MultiWorkerMirroredStrategy cannot do for a nested batch; with everything built, that build would
        only create the optimizer's variables.
        """
        if self.optimizer is not None and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)

    def train_step(self, data: Any) -> Dict[str, tf.Tensor]:
        images, targets = images_and_targets(data)
        with tf.GradientTape() as tape:
            losses = self.compute_losses(self(images, training=True), targets)
            loss = self.optimizer.scale_loss(losses[keys.Loss.TOTAL])
        variables = self.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return self._track(losses)

    def test_step(self, data: Any) -> Dict[str, tf.Tensor]:
        images, targets = images_and_targets(data)
        return self._track(self.compute_losses(self(images, training=False), targets))

    def _track(self, losses):
        """Feeds the global value (sum of the replica shares) of every term to its Mean metric.

        The returned logs are global already. Under MultiWorkerMirroredStrategy Keras averages logs along
        a batch axis, so there each value gets an axis of length 1 (the average of equal values is exact).
        """
        for key, tracker in self.loss_trackers.items():
            tracker.update_state(global_sum(losses[key]))
        logs = {key: tracker.result() for key, tracker in self.loss_trackers.items()}
        if isinstance(self.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy):
            logs = {key: tf.reshape(value, [1]) for key, value in logs.items()}
        return logs


def images_and_targets(data: Any) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
    """Splits a batch given as (images, targets) or as one dict with keys.Sample.IMAGE and the target keys."""
    x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
    if y is None:
        return x[keys.Sample.IMAGE], x
    return (x[keys.Sample.IMAGE] if isinstance(x, dict) else x), y
