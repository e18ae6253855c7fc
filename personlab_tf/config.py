"""Gin configuration: parses files and bindings with the repository's `gin/` folder on the search path."""

from pathlib import Path

import gin

GIN_DIR = Path(__file__).resolve().parents[1] / "gin"


def parse_gin(files, bindings):
    """Parses gin `files` then `bindings`; `include 'name.gin'` finds the shipped files from any directory."""
    gin.add_config_file_search_path(str(GIN_DIR))
    gin.parse_config_files_and_bindings(list(files), list(bindings))
