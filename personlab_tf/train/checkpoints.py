"""Checkpoints of the model and the optimizer (momentum, step counter and EMA weights).

Every `every_steps` steps the raw weights, the optimizer slots and the Polyak averages are written to
`model_dir`; in multi-worker training every worker must take part in saving, so the non-chief workers
write to a scratch directory that is deleted afterwards.
"""

import math
import os
import shutil
import sys
import tempfile

import keras
import tensorflow as tf

from personlab_tf.train import strategy as strategy_lib


def build_checkpoint(model, optimizer):
    """A tf.train.Checkpoint over the model and its (built) optimizer."""
    optimizer.build(model.trainable_variables)
    return tf.train.Checkpoint(model=model, optimizer=optimizer)


def restore_latest(checkpoint, model_dir):
    """Restores the newest checkpoint of `model_dir`, if any; returns its path or None."""
    latest = tf.train.latest_checkpoint(model_dir)
    if latest:
        checkpoint.restore(latest).assert_existing_objects_matched()
    return latest


def use_averaged_weights(model, optimizer):
    """Writes the Polyak (EMA) averages into the model's trainable weights, for evaluation or export."""
    optimizer.finalize_variable_values(model.trainable_variables)


class CheckpointEvery(keras.callbacks.Callback):
    """Saves a checkpoint at the end of every epoch (one epoch = the checkpoint interval) and at stop.

    An epoch whose loss is not finite is not saved, so the newest checkpoint stays the last good state.
    """

    def __init__(self, checkpoint, model_dir, max_to_keep=5):
        super().__init__()
        self._scratch = None
        directory = model_dir
        if not strategy_lib.is_chief():
            self._scratch = tempfile.mkdtemp(prefix="personlab_worker_ckpt_")
            directory = self._scratch
        self._manager = tf.train.CheckpointManager(checkpoint, directory, max_to_keep=max_to_keep)
        self._saved_at = None

    def _save(self):
        step = int(self.model.optimizer.iterations.numpy())
        if step != self._saved_at:
            self._manager.save(checkpoint_number=step)
            self._saved_at = step

    def on_epoch_end(self, epoch, logs=None):
        loss = float((logs or {}).get("loss", 0.0))
        if not math.isfinite(loss):
            print(f"loss is {loss}: no checkpoint at step {int(self.model.optimizer.iterations.numpy())}",
                  file=sys.stderr, flush=True)
            return
        self._save()

    def on_train_end(self, logs=None):
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)


def checkpoint_step(path):
    """The global step stored in a checkpoint path `.../ckpt-STEP`."""
    return int(os.path.basename(path).rsplit("-", 1)[1])
