"""The one module that imports every task (the way tf3d's gin_imports.py does), so that gin can name their
configurables and the scripts can find a task by the name recorded in a SavedModel.

Nothing else outside personlab_tf/tasks/ imports a task package (tests/test_layout.py checks it); a new task
adds its import and its class to TASKS here (docs/tasks.md).
"""

from typing import Any, Dict, Sequence, Type

import gin
import personlab_tf.train.trainer  # noqa: F401  (registers the core configurable `train`)
from personlab_tf import config
from personlab_tf.inference import serving
from personlab_tf.task import Task
from personlab_tf.tasks.parts.task import PartsTask
from personlab_tf.tasks.personlab.task import PersonLabTask

# Task name -> class (the name is what a SavedModel records).
TASKS: Dict[str, Type[Task]] = {task.name: task for task in (PersonLabTask, PartsTask)}


def parse_gin(files: Sequence[str], bindings: Sequence[str]) -> None:
    """Parses gin `files` then `bindings`; `include 'name.gin'` finds the shipped files from any directory.

    Raises:
      IOError: a file does not exist; ValueError: a binding or file does not parse (e.g. an unquoted string
        such as a glob), or names an unknown configurable or parameter.
    """
    gin.add_config_file_search_path(str(config.GIN_DIR))
    try:
        gin.parse_config_files_and_bindings(list(files), list(bindings))
    except SyntaxError as error:  # gin's parse errors: the message and the offending text
        where = f"{error.filename}, line {error.lineno}" if error.filename else "the bindings"
        raise ValueError(f"{error.msg} in {where}: {(error.text or '').strip()!r} (strings, globs included, "
                         "are quoted: TRAIN_FILES = 'records/train-*')") from None


def task_class(name: str) -> Type[Task]:
    """The class of the task called `name`; ValueError listing the known ones otherwise."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {', '.join(sorted(TASKS))}")
    return TASKS[name]


def task_of_saved_model(loaded: Any) -> Task:
    """The task recorded in a loaded SavedModel (inference/serving.read_metadata), with its options."""
    metadata = serving.read_metadata(loaded)
    return task_class(metadata["task"]).from_config(metadata["config"])
