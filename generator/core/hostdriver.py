"""The board driver package (host/cfgen_driver), importable from the repository without
installing it: the generator shares its restricted data loaders and metadata rules."""

from __future__ import annotations

import sys
from pathlib import Path

from . import paths

HOST_DIR = paths.HOST_DIR


def driver():
    """The cfgen_driver package."""
    if str(HOST_DIR) not in sys.path:
        sys.path.insert(0, str(HOST_DIR))
    import cfgen_driver
    return cfgen_driver
