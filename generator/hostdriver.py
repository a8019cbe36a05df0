"""The board driver package (host/cfgen_driver), importable from the repository without
installing it: the generator shares its restricted data loaders and metadata rules."""

from __future__ import annotations

import sys
from pathlib import Path

HOST_DIR = Path(__file__).resolve().parents[1] / "host"


def driver():
    """The cfgen_driver package."""
    if str(HOST_DIR) not in sys.path:
        sys.path.insert(0, str(HOST_DIR))
    import cfgen_driver
    return cfgen_driver
