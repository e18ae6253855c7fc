"""The training job of every task: strategy, data, model, optimizer, checkpoints with resume, summaries
(PersonLab §4.1). The task comes from gin (`experiment.task`, config.py); docs/training.md."""

import contextlib
import math
import os

import gin
import keras
import tensorflow as tf

from personlab_tf import config, keys
from personlab_tf.train import callbacks as callbacks_lib
from personlab_tf.train import checkpoints
from personlab_tf.train import strategy as strategy_lib
from personlab_tf.train.optimizer import build_optimizer


def warm_start(model, init_dir, build_model):
    """Gives `model` the weights of the newest checkpoint of `init_dir` (a two-stage schedule's first
    stage); the optimizer, step counter included, starts afresh. Returns the checkpoint path.

    The checkpoint is restored into a second model from `build_model` whose weights are then copied:
    restoring into `model` itself would leave a deferred restoration of the first stage's optimizer that
    fires when `model` is compiled.

    Raises:
      FileNotFoundError: `init_dir` has no checkpoint.
    """
    path = tf.train.latest_checkpoint(init_dir)
    if path is None:
        raise FileNotFoundError(f"no checkpoint to start from in {init_dir}")
    source = build_model()
    tf.train.Checkpoint(model=source).restore(path).expect_partial().assert_existing_objects_matched()
    model.set_weights(source.get_weights())
    return path


PRECISIONS = (None, "mixed_bfloat16", "mixed_float16")


@contextlib.contextmanager
def precision_policy(name):
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


def distributed_dataset_options(dataset):
    """Shards by element across workers: every worker reads all files in the same order (same seed)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


@gin.configurable(denylist=["model_dir"])
def train(model_dir, train_files=gin.REQUIRED, num_steps=1_000_000, global_batch_size=8, strategy="mirrored",
          steps_per_checkpoint=1000, log_every=100, image_summary_every=1000, seed=0, deterministic=False,
          logical_cpus=0, init_checkpoint=None, mixed_precision=None, jit_compile=False):
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
    """
    task = config.experiment()
    if logical_cpus:
        strategy_lib.split_cpu(logical_cpus)
    distribution = strategy_lib.make_strategy(strategy)
    os.makedirs(model_dir, exist_ok=True)
    with distribution.scope(), precision_policy(mixed_precision):
        model = task.build_model()
        optimizer = build_optimizer(num_steps=num_steps)
        model.compile(optimizer=optimizer, jit_compile=jit_compile)
        checkpoint = checkpoints.build_checkpoint(model, optimizer)
        restored = checkpoints.restore_latest(checkpoint, model_dir)
        started_from = warm_start(model, init_checkpoint, task.build_model) if init_checkpoint and not restored else None
    start = int(optimizer.iterations.numpy())
    print(f"training {model.backbone_name} on {distribution.num_replicas_in_sync} replicas, "
          f"global batch {global_batch_size}, {mixed_precision or 'float32'}{', XLA' if jit_compile else ''}",
          flush=True)
    if restored:
        print(f"resuming from {restored} at step {start}", flush=True)
    if started_from:
        print(f"starting from the weights of {started_from}", flush=True)
    if start >= num_steps:
        print(f"training already finished: step {start} >= num_steps {num_steps}", flush=True)
        return {}
    dataset = task.build_dataset(train_files, global_batch_size, training=True, seed=seed, deterministic=deterministic,
                                 start_batch=start)
    dataset = distributed_dataset_options(dataset)
    if strategy_lib.is_chief():
        with open(os.path.join(model_dir, config.OPERATIVE_CONFIG), "w") as f:
            f.write(gin.operative_config_str())
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
