"""Board files (boards/*.json or a user's JSON file): part, family, resources, clock, PS/DMA.

`load_board` validates every field once (types, ranges, safe names) and fills the
defaults, so every consumer reads the same resolved values.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from .errors import BuildError
from .escape import one_line
from .jsonfile import read_json
from .names import check_name

BOARDS_DIR = Path(__file__).resolve().parent.parent / "boards"
REQUIRED = ("name", "part", "family", "resources", "clock_mhz", "ps")
OPTIONAL = ("description", "vivado_board_part", "board_part", "preset", "dma_data_width",
            "hp_port")
FAMILIES = ("xc7", "xcup")
PS_KINDS = ("zynq7", "zynq_ultra")
RESOURCES = ("LUT", "FF", "BRAM36", "DSP", "URAM")
DMA_WIDTHS = (32, 64, 128, 256, 512, 1024)
MAX_BOARD_BYTES = 1 << 20
# Vivado part / board-part / port names: no spaces, quotes or Tcl specials.
_TOKEN = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")


def board_names() -> list[str]:
    return sorted(p.stem for p in BOARDS_DIR.glob("*.json"))


def _board_path(name: str) -> Path:
    if name in board_names():
        return BOARDS_DIR / f"{name}.json"
    path = Path(name)
    try:
        if path.suffix == ".json" and path.is_file():
            return path
    except (OSError, ValueError):       # a name too long, a NUL byte, ...
        pass
    raise BuildError(f"unknown board '{one_line(name, 80)}' (known: {', '.join(board_names())}; "
                     "or the path of a board .json file)")


def load_board(name: str) -> dict:
    """The board named `name` (a board of boards/) or read from the .json file `name`."""
    path = _board_path(str(name))
    return validate_board(read_json(path, "board file", BuildError, MAX_BOARD_BYTES), str(path))


def _field(board: dict, key: str, where: str, kind, default=None):
    value = board.get(key, default)
    if value is None or isinstance(value, bool) or not isinstance(value, kind):
        names = {str: "a string", int: "an integer", dict: "an object",
                 (int, float): "a number"}
        raise BuildError(f"{where}: '{key}' must be {names.get(kind, kind)}, got {value!r:.60}")
    return value


def validate_board(board, where: str = "board") -> dict:
    """A checked copy of a board dict with every optional field resolved."""
    if not isinstance(board, dict):
        raise BuildError(f"{where}: a board file must be a JSON object")
    missing = [k for k in REQUIRED if k not in board]
    if missing:
        raise BuildError(f"{where}: missing {', '.join(missing)}")
    unknown = sorted(map(str, set(board) - set(REQUIRED) - set(OPTIONAL)))
    if unknown:
        raise BuildError(f"{where}: unknown field(s) {', '.join(unknown)}")
    out = {}
    out["name"] = check_name(_field(board, "name", where, str), f"{where}: board name", BuildError)
    desc = _field(board, "description", where, str, out["name"])
    if len(desc) > 200 or not desc.isprintable():
        raise BuildError(f"{where}: 'description' must be one printable line of at most 200 "
                         "characters")
    out["description"] = desc
    zynqmp = board.get("ps") == "zynq_ultra"
    defaults = {"part": "", "vivado_board_part": "", "board_part": "", "preset": "",
                "hp_port": "S_AXI_HP0_FPD" if zynqmp else "S_AXI_HP0"}
    for key, default in defaults.items():
        value = _field(board, key, where, str, default)
        if value and not _TOKEN.fullmatch(value):
            raise BuildError(f"{where}: '{key}' {value!r:.60} must be letters, digits and "
                             "'_.:-' (at most 128)")
        out[key] = value
    if not out["part"]:
        raise BuildError(f"{where}: 'part' must not be empty")
    family = _field(board, "family", where, str)
    if family not in FAMILIES:
        raise BuildError(f"{where}: 'family' must be one of {', '.join(FAMILIES)}, got {family!r:.40}")
    out["family"] = family
    ps = _field(board, "ps", where, str)
    if ps not in PS_KINDS:
        raise BuildError(f"{where}: 'ps' must be one of {', '.join(PS_KINDS)}, got {ps!r:.40}")
    out["ps"] = ps
    res = _field(board, "resources", where, dict)
    bad = sorted(map(str, set(res) - set(RESOURCES)))
    if bad:
        raise BuildError(f"{where}: unknown resource(s) {', '.join(bad)} "
                         f"(known: {', '.join(RESOURCES)})")
    out["resources"] = {}
    for key in RESOURCES:
        if key not in res:
            if key == "URAM":
                continue
            raise BuildError(f"{where}: resources.{key} is missing")
        v = res[key]
        if isinstance(v, bool) or not isinstance(v, int) or not 0 < v <= 10**8:
            raise BuildError(f"{where}: resources.{key} must be an integer in [1, 1e8], got {v!r:.40}")
        out["resources"][key] = v
    clock = _field(board, "clock_mhz", where, (int, float))
    if not math.isfinite(clock) or not 1 <= clock <= 1000:
        raise BuildError(f"{where}: 'clock_mhz' must be in [1, 1000] MHz, got {clock!r}")
    out["clock_mhz"] = clock
    dma = _field(board, "dma_data_width", where, int, 128 if zynqmp else 64)
    if dma not in DMA_WIDTHS:
        raise BuildError(f"{where}: 'dma_data_width' must be one of "
                         f"{', '.join(map(str, DMA_WIDTHS))}, got {dma!r}")
    out["dma_data_width"] = dma
    return out
