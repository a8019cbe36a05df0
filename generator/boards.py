"""Board files (boards/*.json): part, family, resources, clock, PS/DMA settings."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import BuildError

BOARDS_DIR = Path(__file__).resolve().parent.parent / "boards"
REQUIRED = ("name", "part", "family", "resources", "clock_mhz", "ps")


def board_names() -> list[str]:
    return sorted(p.stem for p in BOARDS_DIR.glob("*.json"))


def load_board(name: str) -> dict:
    path = BOARDS_DIR / f"{name}.json"
    if not path.is_file():
        raise BuildError(f"unknown board '{name}' (known: {', '.join(board_names())})")
    board = json.loads(path.read_text())
    missing = [k for k in REQUIRED if k not in board]
    if missing:
        raise BuildError(f"{path}: missing {', '.join(missing)}")
    return board
