"""Errors as the one line the scripts print (docs/operations.md): the reason, without the context that gin
and TensorFlow wrap around it."""

import re
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tensorflow as tf

# gin appends one line per configurable the error passed through.
_GIN_CONTEXT = re.compile(r"^\s+In call to configurable ")
# TensorFlow's op errors: "{{function_node ...}} " before the reason, " [Op:...] ..." after it, and in graph
# execution a header, the node's stack trace and "[[{{node ...}}]]" lines around it.
_FUNCTION_NODE = re.compile(r"^\{\{function_node [^}]*\}\}\s*")
_OP_SUFFIX = re.compile(r"\s*\[Op:[^\]]*\].*$")
_NODE_LINE = re.compile(r"^\s*\[\[")


def op_error_reason(error: "tf.errors.OpError") -> str:
    """The reason of a TensorFlow op error, e.g. "Unknown image file format. ..." rather than
    "Graph execution error:": the last line of the message before its first "[[{{node ...}}]]" line."""
    lines = error.message.splitlines()
    end = next((index for index, line in enumerate(lines) if _NODE_LINE.match(line)), len(lines))
    text = [line.strip() for line in lines[:end] if line.strip()]
    reason = _OP_SUFFIX.sub("", _FUNCTION_NODE.sub("", text[-1] if text else error.message.strip()))
    return reason or type(error).__name__


def one_line(error: BaseException) -> str:
    """The message of `error` on one line: an op error's reason (`op_error_reason`); otherwise the message
    without gin's "In call to configurable" lines, its lines joined by spaces."""
    tensorflow = sys.modules.get("tensorflow")   # not imported: not an op error (and no need to load it)
    if tensorflow is not None and isinstance(error, tensorflow.errors.OpError):
        return op_error_reason(error)
    lines = [line.strip() for line in str(error).splitlines() if line.strip() and not _GIN_CONTEXT.match(line)]
    return " ".join(lines) or type(error).__name__
