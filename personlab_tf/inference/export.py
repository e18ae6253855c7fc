"""Training checkpoint -> model with the Polyak (EMA) weights -> SavedModel of the task's detector
(scripts/export_saved_model.py, docs/inference.md)."""

import dataclasses
from typing import Any, Dict, Tuple

import keras

from personlab_tf.inference import serving
from personlab_tf.model.training import LossModel
from personlab_tf.task import Task
from personlab_tf.train import checkpoints
from personlab_tf.train.optimizer import build_optimizer


def restore_averaged(model: keras.Model, model_dir: str) -> str:
    """Restores the newest checkpoint of `model_dir` into `model` and writes the EMA weights into it.

    The optimizer comes from the gin builder (`build_optimizer`), so the gin configuration of the training
    run must be parsed first. The checkpoint holds the raw weights and, in the optimizer, their Polyak
    averages, which `checkpoints.use_averaged_weights` writes into the model.

    Returns:
      the checkpoint path.

    Raises:
      FileNotFoundError: `model_dir` has no checkpoint; checkpoints.CheckpointError: none of them restores.
    """
    optimizer = build_optimizer()
    checkpoint = checkpoints.build_checkpoint(model, optimizer)
    path = checkpoints.restore_latest(checkpoint, model_dir)
    if path is None:
        raise FileNotFoundError(f"no checkpoint in {model_dir}")
    checkpoints.use_averaged_weights(model, optimizer)
    return path


def restore_inference_model(task: Task, model_dir: str) -> Tuple[LossModel, str]:
    """The task's network as exported (`build_model(inference=True)`) with the EMA weights of the newest
    checkpoint of `model_dir`; returns (model, checkpoint path)."""
    model = task.build_model(inference=True)
    return model, restore_averaged(model, model_dir)


def task_record(task: Task, checkpoint: str) -> Dict[str, Any]:
    """The metadata a SavedModel carries (serving.read_metadata): task name and options, checkpoint, step."""
    return {"task": task.name, "config": task.config(), "checkpoint": checkpoint,
            "step": checkpoints.checkpoint_step(checkpoint)}


def export_checkpoint(task: Task, model_dir: str, export_dir: str,
                      max_pixels: int = serving.DEFAULT_MAX_PIXELS) -> Dict[str, Any]:
    """Restores the newest checkpoint with its EMA weights and saves the task's detector as a SavedModel.

    Args:
      task: the run's task (gin `experiment()`), with the inference options to export (`with_inference`).
      model_dir: training directory with the checkpoints (its gin configuration already parsed).
      export_dir: SavedModel directory to write.
      max_pixels: the largest image the SavedModel accepts (serving.py).

    Returns:
      dict summary: export_dir, signatures and the task record (with the pixel limit).
    """
    model, path = restore_inference_model(task, model_dir)
    record = task_record(task, path)
    serving.export(task.build_detector(model.inference_model()), export_dir, record, max_pixels)
    return {"export_dir": export_dir, "signatures": [serving.SERVING_DEFAULT, serving.SERVING_IMAGE],
            "inference": dataclasses.asdict(task.options.inference), **record, serving.MAX_PIXELS: max_pixels}
