"""The training job of every task: strategy, data, model, optimizer, checkpoints with resume, summaries
(PersonLab §4.1). The task comes from gin (`experiment.task`, config.py); docs/training.md."""

import contextlib
import math
import os
from typing import Callable, Dict, Iterator, Optional, Sequence, Union

import gin
import keras
import tensorflow as tf
from absl import logging

from personlab_tf import config, errors, keys
from personlab_tf.data import pipeline
from personlab_tf.train import callbacks as callbacks_lib
from personlab_tf.train import checkpoints
from personlab_tf.train import strategy as strategy_lib
from personlab_tf.train.optimizer import build_optimizer


# The bindings a resumed run may change (check_resumed_config): how long, how often, where and how fast it runs.
RESUMABLE_CHANGES = ("train.num_steps", "train.steps_per_checkpoint", "train.log_every", "train.image_summary_every",
                     "train.strategy", "train.logical_cpus", "train.deterministic", "train.train_files",
                     "train.init_checkpoint", "train.jit_compile", "InputOptions.num_parallel_calls")


def warm_start(model: keras.Model, init_dir: str, build_model: Callable[[], keras.Model]) -> str:
    """Gives `model` the weights of the newest checkpoint of `init_dir` (a two-stage schedule's first
    stage); the optimizer, step counter included, starts afresh. Returns the checkpoint path.

    The checkpoint is restored into a second model from `build_model` whose weights are then copied:
    restoring into `model` itself would leave a deferred restoration of the first stage's optimizer that
    fires when `model` is compiled.

    Raises:
      FileNotFoundError: `init_dir` has no checkpoint; checkpoints.CheckpointError: none of them restores.
    """
    source = build_model()
    path = checkpoints.restore_latest(tf.train.Checkpoint(model=source), init_dir, partial=True)
    if path is None:
        raise FileNotFoundError(f"no checkpoint to start from in {init_dir}")
    model.set_weights(source.get_weights())
    return path


PRECISIONS = (None, "mixed_bfloat16", "mixed_float16")


@contextlib.contextmanager
def precision_policy(name: Optional[str]) -> Iterator[None]:
    """Keras' global dtype policy `name` (None: float32) while the model is built; restored afterwards.

    Layers take the policy current at their construction; the tasks' output layers take float32 whatever
    the policy (model/layers.py OUTPUT_DTYPE).

    Raises:
      ValueError: an unknown policy (the message lists the valid ones).
    """
    if name not in PRECISIONS:
        raise ValueError(f"unknown mixed precision policy {name!r}; expected one of "
                         f"{', '.join(repr(p) for p in PRECISIONS)}")
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name or "float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def check_resumed_config(model_dir: str, operative: str, resumable: Sequence[str] = RESUMABLE_CHANGES) -> None:
    """Compares the operative config of a run resuming in `model_dir` with the one stored there.

    Only the bindings of `resumable` may differ (printed); any other difference is refused, since the
    checkpoints were trained with the stored values (docs/operations.md). Nothing is compared when
    `model_dir` holds no checkpoint or no stored config.

    Raises:
      ValueError: a refused difference; the message lists every differing binding and says what to do.
    """
    stored_path = os.path.join(model_dir, config.OPERATIVE_CONFIG)
    if not checkpoints.checkpoint_paths(model_dir) or not tf.io.gfile.exists(stored_path):
        return
    with tf.io.gfile.GFile(stored_path) as f:
        stored = f.read()
    try:
        changes = config.config_changes(stored, operative)
    except (ValueError, SyntaxError) as error:
        logging.warning("%s does not parse (%s): the configuration of the resumed run is not compared with it",
                        stored_path, errors.one_line(error))
        return
    described = "; ".join(f"{name} {old or '(absent)'} -> {new or '(absent)'}" for name, (old, new) in changes.items())
    refused = sorted(set(changes) - set(resumable))
    if refused:
        raise ValueError(f"the operative config differs from {stored_path}, which the checkpoints in {model_dir} were "
                         f"trained with, in {', '.join(refused)} ({described}); resume with that config "
                         f"(--gin_file {stored_path}) or train into a new model_dir (train.init_checkpoint starts "
                         "from its weights)")
    if changes:
        print(f"resuming with changed bindings: {described}", flush=True)


def write_atomically(path: str, text: str) -> None:
    """Writes `text` to `path` through a temporary file renamed over it: a kill leaves the old or the new file."""
    temporary = f"{path}.tmp"
    with tf.io.gfile.GFile(temporary, "w") as f:
        f.write(text)
    tf.io.gfile.rename(temporary, path, overwrite=True)


def distributed_dataset_options(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Shards by element across workers: every worker reads all files in the same order (same seed)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


@gin.configurable(denylist=["model_dir"])
def train(model_dir: str, train_files: Union[str, Sequence[str]] = gin.REQUIRED, num_steps: int = 1_000_000,
          global_batch_size: int = 8, strategy: str = "mirrored", steps_per_checkpoint: int = 1000,
          log_every: int = 100, image_summary_every: int = 1000, seed: int = 0, deterministic: bool = False,
          logical_cpus: int = 0, init_checkpoint: Optional[str] = None, mixed_precision: Optional[str] = None,
          jit_compile: bool = False) -> Dict[str, float]:
    """Trains the experiment's task (`config.experiment()`), resuming from the newest checkpoint in `model_dir`.

    Args:
      model_dir: checkpoints, TensorBoard events (`train/`) and the operative gin config go here.
      train_files: glob of training TFRecord shards.
      num_steps: total optimizer steps (the paper: 1M).
      global_batch_size: images per step over all replicas (the paper: 8, one per GPU).
      strategy: "mirrored", "multi_worker_mirrored" or "one_device" (strategy.make_strategy).
      steps_per_checkpoint: checkpoint interval; also Keras' epoch length.
      log_every: steps between progress lines and scalar summaries.
      image_summary_every: steps between image summaries (0: none).
      seed: seed of data order and augmentation (shared by all workers); a resumed run continues the
        stream of batches where it stopped (data/pipeline.py).
      deterministic: reproducible input order (slower).
      logical_cpus: if > 0, split the CPU into that many logical devices first, so that "mirrored"
        runs that many replicas on a machine without GPUs (tests of multi-replica training).
      init_checkpoint: a training directory whose newest checkpoint gives the initial model weights when
        `model_dir` has no checkpoint yet (the second stage of part parsing); the optimizer starts afresh.
      mixed_precision: None (float32), "mixed_bfloat16" or "mixed_float16" (Keras dtype policies; float16
        scales the loss with a dynamic LossScaleOptimizer). Variables, EMA weights, outputs, refinement and
        losses stay float32, so checkpoints restore under any policy (docs/training.md).
      jit_compile: compile the training step with XLA (the step is shape-static: targets are made in the
        input pipeline).

    Returns:
      dict of the last logged loss terms (global values); {} if training had already finished.

    Raises (each message one line, docs/operations.md):
      checkpoints.CheckpointError: `model_dir` holds checkpoints of which none restores, or a foreign
        `checkpoint` file; ValueError: the configuration differs from the stored one in a binding that may
        not change (`check_resumed_config`), records of another skeleton (`pipeline.check_records_skeleton`), a
        damaged shard (named), shards without records, bad options;
      FileNotFoundError: no shard matches `train_files`.
    """
    task = config.experiment()
    if logical_cpus:
        strategy_lib.split_cpu(logical_cpus)
    distribution = strategy_lib.make_strategy(strategy)
    os.makedirs(model_dir, exist_ok=True)
    input_options = pipeline.InputOptions()
    with distribution.scope(), precision_policy(mixed_precision):
        model = task.build_model()
        optimizer = build_optimizer(num_steps=num_steps)
        model.compile(optimizer=optimizer, jit_compile=jit_compile)
        try:  # before anything is restored or written
            pipeline.check_records_skeleton(train_files, task.skeleton)
        except tf.errors.DataLossError as error:
            raise pipeline.damaged_shard_error(train_files, error) from None
        checkpoint = checkpoints.build_checkpoint(model, optimizer)
        # Every configurable of the run has been called: the operative config is complete.
        operative = gin.operative_config_str()
        check_resumed_config(model_dir, operative, RESUMABLE_CHANGES + task.resumable_bindings)
        restored = checkpoints.restore_latest(checkpoint, model_dir)
        started_from = None
        if init_checkpoint and not restored:
            started_from = warm_start(model, init_checkpoint, task.build_model)
    start = int(optimizer.iterations.numpy())
    print(f"training {model.network.backbone} on {distribution.num_replicas_in_sync} replicas, "
          f"global batch {global_batch_size}, {mixed_precision or 'float32'}{', XLA' if jit_compile else ''}",
          flush=True)
    if restored:
        print(f"resuming from {restored} at step {start}", flush=True)
        if strategy_lib.is_chief():
            checkpoints.record_state(model_dir, restored)
    if started_from:
        print(f"starting from the weights of {started_from}", flush=True)
    if start >= num_steps:
        print(f"training already finished: step {start} >= num_steps {num_steps}", flush=True)
        return {}
    if strategy_lib.is_chief():
        write_atomically(os.path.join(model_dir, config.OPERATIVE_CONFIG), operative)
    try:
        dataset = task.build_dataset(train_files, global_batch_size, training=True, seed=seed,
                                     deterministic=deterministic, start_batch=start, options=input_options)
        return _fit(model, distributed_dataset_options(dataset), checkpoint, model_dir, start, num_steps,
                    steps_per_checkpoint, log_every, image_summary_every)
    except tf.errors.DataLossError as error:  # a truncated or corrupt shard: name it
        raise pipeline.damaged_shard_error(train_files, error) from None


def _fit(model, dataset, checkpoint, model_dir, start, num_steps, steps_per_checkpoint, log_every,
         image_summary_every):
    """Keras fit from step `start` to `num_steps` with checkpoints, progress and summaries; returns the
    last logged loss terms."""
    steps_per_epoch = min(steps_per_checkpoint, num_steps)
    writer = tf.summary.create_file_writer(os.path.join(model_dir, "train"))
    callbacks = [
        keras.callbacks.TerminateOnNaN(),
        callbacks_lib.StopAtStep(num_steps),
        checkpoints.CheckpointEvery(checkpoint, model_dir),
        callbacks_lib.Progress(num_steps, log_every, writer if strategy_lib.is_chief() else None),
    ]
    if image_summary_every and strategy_lib.is_chief():
        images = next(iter(dataset))[0][keys.Sample.IMAGE][:2]
        callbacks.append(callbacks_lib.ImageSummaries(images, image_summary_every, writer))
    history = model.fit(dataset, epochs=math.ceil(num_steps / steps_per_epoch), initial_epoch=start // steps_per_epoch,
                        steps_per_epoch=steps_per_epoch, callbacks=callbacks, verbose=0)
    writer.flush()
    return {k: float(v[-1]) for k, v in history.history.items()}
