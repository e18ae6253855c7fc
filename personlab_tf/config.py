"""Gin configuration: parses files and bindings with every configurable registered and the repository's
`gin/` folder on the search path, so any shipped gin file parses from any entry point and directory."""

import importlib
from pathlib import Path

import gin

GIN_DIR = Path(__file__).resolve().parents[1] / "gin"
# Modules that define gin configurables (imported before parsing so that gin knows their names).
CONFIGURABLE_MODULES = ("personlab_tf.train.trainer", "personlab_tf.inference.export")


def parse_gin(files, bindings):
    """Parses gin `files` then `bindings`; `include 'name.gin'` finds the shipped files from any directory."""
    for module in CONFIGURABLE_MODULES:
        importlib.import_module(module)
    gin.add_config_file_search_path(str(GIN_DIR))
    gin.parse_config_files_and_bindings(list(files), list(bindings))


def query_value(binding_key, default):
    """The value bound to `binding_key`, with a macro (`%NAME`) resolved to its value; `default` if unbound."""
    try:
        value = gin.query_parameter(binding_key)
    except ValueError:
        return default
    if isinstance(value, gin.config.ConfigurableReference) and value.evaluate:
        return value.scoped_configurable_fn()
    return value
