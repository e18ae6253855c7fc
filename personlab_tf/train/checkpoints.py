"""Checkpoints of the model and the optimizer (momentum, step counter and EMA weights), and resuming.

Every `every_steps` steps the raw weights, the optimizer slots and the Polyak averages are written to
`model_dir` as `ckpt-STEP` (TensorFlow's `CheckpointManager`, which also keeps the `checkpoint` state file);
in multi-worker training every worker must take part in saving, so the non-chief workers write to a scratch
directory that is deleted afterwards.

Resuming does not trust the state file (docs/operations.md): the checkpoints are the `ckpt-STEP` files
present, tried newest first; one that does not restore (truncated, unreadable) is reported with a warning
naming it and the previous one is tried. A directory holding checkpoints of which none restores, or a file
named `checkpoint` that is not TensorFlow's state file in a directory without checkpoints, is an error
(`CheckpointError`), never a fresh start over them.
"""

import math
import os
import re
import shutil
import sys
import tempfile
from typing import Any, Dict, List, Optional, Tuple

import keras
import tensorflow as tf
from absl import logging

from personlab_tf import errors
from personlab_tf.train import strategy as strategy_lib

CHECKPOINT_PREFIX = "ckpt"     # CheckpointManager's default: model_dir/ckpt-STEP
STATE_FILE = "checkpoint"      # TensorFlow's checkpoint state file in model_dir
_INDEX = re.compile(rf"^{CHECKPOINT_PREFIX}-(\d+)\.index$")


class CheckpointError(ValueError):
    """A model directory whose checkpoints cannot be used; training must not start afresh over it."""


def build_checkpoint(model: keras.Model, optimizer: keras.optimizers.Optimizer) -> tf.train.Checkpoint:
    """A tf.train.Checkpoint over the model and its (built) optimizer."""
    optimizer.build(model.trainable_variables)
    return tf.train.Checkpoint(model=model, optimizer=optimizer)


def checkpoint_paths(model_dir: str) -> List[str]:
    """The checkpoints present in `model_dir`, newest (highest step) first: the prefixes `ckpt-STEP` whose
    index file exists (TensorFlow writes the index last, so a save interrupted earlier leaves none)."""
    if not tf.io.gfile.isdir(model_dir):
        return []
    steps = [int(match.group(1)) for match in map(_INDEX.match, tf.io.gfile.listdir(model_dir)) if match]
    return [os.path.join(model_dir, f"{CHECKPOINT_PREFIX}-{step}") for step in sorted(steps, reverse=True)]


def read_state(model_dir: str) -> Tuple[Optional[object], Optional[str]]:
    """(the CheckpointState of `model_dir/checkpoint`, None) when it reads; (None, why it is not a readable
    TensorFlow checkpoint state file) when it does not; (None, None) when there is no such file."""
    if not tf.io.gfile.exists(os.path.join(model_dir, STATE_FILE)):
        return None, None
    try:
        state = tf.train.get_checkpoint_state(model_dir)
    except (ValueError, tf.errors.OpError) as error:  # e.g. an empty file: "Invalid checkpoint state"
        return None, errors.one_line(error)
    return (state, None) if state is not None else (None, "it does not parse as a checkpoint state")


def restore_latest(checkpoint: tf.train.Checkpoint, model_dir: str, partial: bool = False) -> Optional[str]:
    """Restores the newest checkpoint of `model_dir` that restores, whatever the state file says.

    Args:
      checkpoint: the objects to restore (`build_checkpoint`, or a part of them with `partial`).
      model_dir: the training directory.
      partial: the checkpoint may hold objects that `checkpoint` lacks (e.g. only the model of it).

    Returns:
      the restored checkpoint's path, or None if `model_dir` holds no checkpoint.

    Raises:
      CheckpointError: `model_dir` holds checkpoints and none restores; or it holds none but a file
        named `checkpoint` that is not a TensorFlow state file (not ours to replace).
    """
    paths = checkpoint_paths(model_dir)
    _, problem = read_state(model_dir)
    state_path = os.path.join(model_dir, STATE_FILE)
    if problem and not paths:
        raise CheckpointError(f"{state_path} is not a TensorFlow checkpoint state file ({problem}) and "
                              f"{model_dir} holds no checkpoint: move that file away or choose another model_dir")
    if problem:
        logging.warning("%s is unreadable (%s); using the checkpoints present", state_path, problem)
    failures = []
    for path in paths:
        try:
            status = checkpoint.restore(path)
            (status.expect_partial() if partial else status).assert_existing_objects_matched()
        except Exception as error:  # truncated files raise OpError, IndexError, ValueError... alike
            failures.append(f"{os.path.basename(path)}: {errors.one_line(error)}")
            logging.warning("checkpoint %s cannot be restored (%s); trying the previous one", path,
                            errors.one_line(error))
            continue
        return path
    if failures:
        raise CheckpointError(f"none of the {len(paths)} checkpoints in {model_dir} restores ({'; '.join(failures)}); "
                              "refusing to start afresh over them: remove them or choose another model_dir")
    return None


def record_state(model_dir: str, restored: str) -> None:
    """Makes `model_dir/checkpoint` name `restored` as the newest checkpoint, after the checkpoints present up
    to its step (so the CheckpointManager of the resumed run keeps rotating them), unless it already does.
    Checkpoints of later steps that did not restore are left on disk, and replaced when training saves
    those steps again."""
    state, _ = read_state(model_dir)
    if state and os.path.basename(state.model_checkpoint_path) == os.path.basename(restored):
        return
    step = checkpoint_step(restored)
    kept = [path for path in reversed(checkpoint_paths(model_dir)) if checkpoint_step(path) <= step]
    times = [tf.io.gfile.stat(path + ".index").mtime_nsec / 1e9 for path in kept]
    # TensorFlow's writer of the state file (the one CheckpointManager uses).
    tf.compat.v1.train.update_checkpoint_state(model_dir, restored, kept, all_model_checkpoint_timestamps=times,
                                               last_preserved_timestamp=min(times) - 1.0)


def use_averaged_weights(model: keras.Model, optimizer: keras.optimizers.Optimizer) -> None:
    """Writes the Polyak (EMA) averages into the model's trainable weights, for evaluation or export."""
    optimizer.finalize_variable_values(model.trainable_variables)


class CheckpointEvery(keras.callbacks.Callback):
    """Saves a checkpoint at the end of every epoch (one epoch = the checkpoint interval) and at stop.

    An epoch whose loss is not finite is not saved, so the newest checkpoint stays the last good state.
    """

    def __init__(self, checkpoint: tf.train.Checkpoint, model_dir: str, max_to_keep: int = 5):
        super().__init__()
        self._scratch = None
        directory = model_dir
        if not strategy_lib.is_chief():
            self._scratch = tempfile.mkdtemp(prefix="personlab_worker_ckpt_")
            directory = self._scratch
        self._manager = tf.train.CheckpointManager(checkpoint, directory, max_to_keep=max_to_keep,
                                                   checkpoint_name=CHECKPOINT_PREFIX)
        self._saved_at = None

    def _save(self):
        step = int(self.model.optimizer.iterations.numpy())
        if step != self._saved_at:
            self._manager.save(checkpoint_number=step)
            self._saved_at = step

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        loss = float((logs or {}).get("loss", 0.0))
        if not math.isfinite(loss):
            print(f"loss is {loss}: no checkpoint at step {int(self.model.optimizer.iterations.numpy())}",
                  file=sys.stderr, flush=True)
            return
        self._save()

    def on_train_end(self, logs: Optional[Dict[str, Any]] = None) -> None:
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)


def checkpoint_step(path: str) -> int:
    """The global step stored in a checkpoint path `.../ckpt-STEP`."""
    return int(os.path.basename(path).rsplit("-", 1)[1])
