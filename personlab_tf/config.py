"""Gin configuration shared by every entry point: the experiment's task, the shipped gin folder, and the
operative configuration written next to the checkpoints.

`registry.parse_gin` parses files and bindings with every configurable registered; the task of an
experiment is bound as `experiment.task = @PersonLabTask()` (or `@PartsTask()`), and `experiment()` returns it
configured, in training, export and evaluation alike.
"""

import os
from pathlib import Path
from typing import Sequence

import gin

from personlab_tf.task import Task

GIN_DIR = Path(__file__).resolve().parents[1] / "gin"
OPERATIVE_CONFIG = "operative_config.gin"  # written into model_dir by the trainer, read back by export


@gin.configurable
def experiment(task: Task = gin.REQUIRED) -> Task:
    """The experiment's task, configured by gin (`experiment.task = @PersonLabTask()`)."""
    return task


def run_gin_files(model_dir: str, gin_files: Sequence[str]) -> list:
    """The gin files of a training run: the given ones, else its operative config if it exists."""
    if gin_files:
        return list(gin_files)
    operative = os.path.join(model_dir, OPERATIVE_CONFIG)
    return [operative] if os.path.exists(operative) else []


def error_line(error: BaseException) -> str:
    """The one-line message of an error for a script's `error: ...` line: gin appends the configurable it was
    raised in ("In call to configurable ...") on lines of its own, which are dropped."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
