"""Gin configuration shared by every entry point: the experiment's task, the shipped gin folder, and the
operative configuration written next to the checkpoints.

`registry.parse_gin` parses files and bindings with every configurable registered; the task of an
experiment is bound as `experiment.task = @PersonLabTask()` (or `@PartsTask()`), and `experiment()` returns it
configured, in training, export and evaluation alike.
"""

import os
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import gin
from gin import config_parser

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


def operative_bindings(text: str) -> Dict[str, str]:
    """{"[scope/]Configurable.parameter": the value's gin text} of an operative config, its macros
    (`%NAME` values) resolved.

    Raises:
      ValueError / SyntaxError: the text does not parse as gin.
    """
    statements = [statement for statement in config_parser.ConfigParser(text, gin.config.ParserDelegate())
                  if isinstance(statement, config_parser.BindingStatement)]
    macros = {statement.selector: statement.value for statement in statements if not statement.arg_name}
    bindings = {}
    for statement in statements:
        if statement.arg_name:
            value = repr(statement.value)
            if value.startswith("%") and value[1:] in macros:
                value = repr(macros[value[1:]])
            scope = f"{statement.scope}/" if statement.scope else ""
            bindings[f"{scope}{statement.selector}.{statement.arg_name}"] = value
    return bindings


def config_changes(stored: str, current: str) -> Dict[str, Tuple[Optional[str], Optional[str]]]:
    """{binding: (stored value, current value)} of the bindings whose values differ between two operative
    configs (`operative_bindings`; None where a config lacks the binding), sorted by name."""
    old, new = operative_bindings(stored), operative_bindings(current)
    return {name: (old.get(name), new.get(name)) for name in sorted(set(old) | set(new))
            if old.get(name) != new.get(name)}
