"""Board files (boards/*.json or a user's JSON file): part, family, resources, clock, PS/DMA.

`load_board` validates every field once (types, ranges, safe names) and returns a frozen
`Board` with every default resolved, so every consumer (folding, performance model, HLS,
RTL and host backends, report, package, notebook) reads the same values as attributes:

    board = load_board("pynq-z2")            # or the path of a .json board file
    board.clock_mhz, board.resources["LUT"], board.zynqmp, board.dma_data_width, board.hp_port
    board.dram_mbps                          # DRAM bandwidth a PL read master can use (MB/s)
    board.with_clock(150)                    # --clock: a new Board, validated the same way
    board.to_json()                          # board.json (the board file's keys)
    Board.from_json(json.loads(text))        # back from board.json

`as_board(x)` is what a consumer calls on what it was given: a Board is returned as is; a
dict is validated the same way, and a partial dict (tests, library callers; never a board
file) gets `PARTIAL_DEFAULTS` for the required fields it lacks; None is the generic board.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from ..core import paths

from ..core.errors import BuildError
from ..core.escape import one_line
from ..core.jsonfile import read_json
from ..core.names import check_name

BOARDS_DIR = paths.BOARDS_DIR
REQUIRED = ("name", "part", "family", "resources", "clock_mhz", "ps")
OPTIONAL = ("description", "vivado_board_part", "board_part", "preset", "dma_data_width",
            "hp_port", "dram_peak_mbps", "dram_port_bits", "dram_efficiency")
FAMILIES = ("xc7", "xcup")
PS_KINDS = ("zynq7", "zynq_ultra")
RESOURCES = ("LUT", "FF", "BRAM36", "DSP", "URAM")
#: resources a board may leave out or set to 0: UltraRAM blocks (URAM288, 4096 x 72 bits),
#: on UltraScale+ parts only (zcu104 96, kv260 64; ultra96-v2's ZU3EG and the Zynq-7000
#: parts have none)
OPTIONAL_RESOURCES = ("URAM",)
DMA_WIDTHS = (32, 64, 128, 256, 512, 1024)
#: AXI data widths of the PS slave port a PL read master streams weights through
#: (Zynq-7000 S_AXI_HP0..3: 32 or 64 bits, UG585 ch. 5; MPSoC S_AXI_HP*_FPD: 32, 64, 128)
DRAM_PORT_WIDTHS = (32, 64, 128, 256, 512, 1024)
#: DRAM bandwidth defaults for a board file that leaves them out, per PS kind (the stock
#: boards state theirs; docs/FOLDING.md, "DRAM-streamed layers"):
#:   dram_peak_mbps   the DDR interface's peak, bus bytes x transfers per second (MB/s = 1e6
#:                    bytes/s). zynq7: 2,100, the 16-bit DDR3 at 1,050 MT/s of PYNQ-Z1/Z2 (TUL
#:                    PYNQ-Z2 spec "16-bit bus @ 1050 Mbps"; Digilent PYNQ-Z1 reference manual:
#:                    one 16-bit IS43TR16256A, up to 1,066 Mbps), the narrowest Zynq-7000 memory
#:                    of boards/; zynq_ultra: 8,533, the 32-bit LPDDR4 at 2,133 MT/s of
#:                    Ultra96-V2 (Avnet hardware user guide), the narrowest MPSoC memory there.
#:   dram_port_bits   the HP port's width: 64 on zynq7 (the widest HP port), 128 on zynq_ultra.
#:   dram_efficiency  the share of the lower of (port width x PL clock, DDR peak) a stream of
#:                    long read bursts gets: 0.75, UG585 section 22.3.2 ("the DDR controller
#:                    was designed to have a maximum efficiency of approximately 75%"); used
#:                    for MPSoC too (an assumption, not measured there).
DRAM_DEFAULTS = {"zynq7": {"dram_peak_mbps": 2100, "dram_port_bits": 64, "dram_efficiency": 0.75},
                 "zynq_ultra": {"dram_peak_mbps": 8533, "dram_port_bits": 128,
                                "dram_efficiency": 0.75}}
MAX_BOARD_BYTES = 1 << 20
# Vivado part / board-part / port names: no spaces, quotes or Tcl specials.
_TOKEN = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")


#: what a partial board dict (not a board file) gets for the required fields it lacks: a
#: Zynq-7020 (PYNQ-Z2) part at 100 MHz, with no resource budget (no capacity known).
PARTIAL_DEFAULTS = {"name": "generic", "part": "xc7z020clg400-1", "clock_mhz": 100, "resources": {}}
#: Zynq MPSoC: the PS enables its HPC0/HPC1/HP0..HP3 slave ports as S_AXI_GP0..GP5.
MPSOC_GP_INDEX = {"S_AXI_HPC0_FPD": 0, "S_AXI_HPC1_FPD": 1, "S_AXI_HP0_FPD": 2, "S_AXI_HP1_FPD": 3,
                  "S_AXI_HP2_FPD": 4, "S_AXI_HP3_FPD": 5}


@dataclass(frozen=True)
class Board:
    """A validated board with every default resolved (see the module docstring)."""

    name: str                      # a safe name (generator/core/names.py)
    part: str                      # Vivado part, never empty
    family: str                    # one of FAMILIES: xc7 (7-series) or xcup (UltraScale+)
    ps: str                        # one of PS_KINDS, consistent with the family
    clock_mhz: float               # PL clock in [1, 1000] MHz (an int in a board file stays int)
    resources: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    #                                LUT, FF, BRAM36, DSP (and URAM); empty: capacity unknown
    description: str = ""          # one printable line; the name when the file has none
    board_part: str = ""           # Vivado board part ('vivado_board_part' or 'board_part'); '' = bare part
    preset: str = ""               # PS preset name, '' = none
    dma_data_width: int = 64       # AXI DMA memory-map width in bits: 128 on zynq_ultra, 64 on zynq7
    hp_port: str = "S_AXI_HP0"     # PS slave port of the DMA: S_AXI_HP0_FPD on zynq_ultra
    # DRAM behind the PS (DRAM-streamed weights, generator/hw/dram.py): the DDR peak in MB/s,
    # the AXI width of the PS port a PL read master uses, the usable share (DRAM_DEFAULTS)
    dram_peak_mbps: float = 2100
    dram_port_bits: int = 64
    dram_efficiency: float = 0.75

    def __post_init__(self):
        if not isinstance(self.resources, MappingProxyType):
            object.__setattr__(self, "resources", MappingProxyType(dict(self.resources)))

    @property
    def zynqmp(self) -> bool:
        """Zynq UltraScale+ MPSoC PS (zynq_ultra_ps_e) rather than Zynq-7000."""
        return self.ps == "zynq_ultra"

    @property
    def clock_ns(self) -> float:
        return round(1000.0 / self.clock_mhz, 3)

    @property
    def hp_gp_index(self) -> int:
        """MPSoC: the S_AXI_GP<n> index of hp_port (2, HP0_FPD, when it names none)."""
        return MPSOC_GP_INDEX.get(self.hp_port, 2)

    @property
    def dram_port_mbps(self) -> float:
        """Peak of the PS port at the PL clock: port bytes x clock (MB/s)."""
        return self.dram_port_bits / 8 * self.clock_mhz

    @property
    def dram_mbps(self) -> float:
        """DRAM bandwidth one PL read master can use at the board's clock (MB/s = 1e6 bytes/s):
        the lower of the port's peak (width x PL clock) and the DDR peak, times the
        efficiency (DRAM_DEFAULTS). pynq-z2 at 100 MHz: 0.75 x min(800, 2,100) = 600."""
        return self.dram_efficiency * min(self.dram_port_mbps, float(self.dram_peak_mbps))

    @property
    def dram_bytes_per_cycle(self) -> float:
        """dram_mbps in bytes per PL clock cycle."""
        return self.dram_mbps / self.clock_mhz

    def with_clock(self, mhz) -> "Board":
        """This board at another PL clock (--clock), range-checked like a board file's."""
        return replace(self, clock_mhz=float(_clock(mhz, "--clock")))

    def to_json(self) -> dict:
        """board.json: the board file's keys, every value resolved (both board-part keys hold
        the board part Vivado uses)."""
        return {"name": self.name, "description": self.description, "part": self.part,
                "vivado_board_part": self.board_part, "board_part": self.board_part,
                "preset": self.preset, "hp_port": self.hp_port, "family": self.family,
                "ps": self.ps, "resources": dict(self.resources), "clock_mhz": self.clock_mhz,
                "dma_data_width": self.dma_data_width, "dram_peak_mbps": self.dram_peak_mbps,
                "dram_port_bits": self.dram_port_bits, "dram_efficiency": self.dram_efficiency}

    def report_info(self) -> dict:
        """report.json's 'board_info'."""
        return {"name": self.name, "part": self.part, "resources": dict(self.resources),
                "clock_mhz": self.clock_mhz}

    @classmethod
    def from_json(cls, d, where: str = "board.json") -> "Board":
        """The Board that to_json() wrote (checked like a board file; as as_board, an empty
        'resources' is allowed)."""
        return validate_board(d, where, partial=True)

    @classmethod
    def read(cls, path) -> "Board":
        """A build folder's board.json (bounded strict JSON; BuildError naming the file)."""
        path = Path(path)
        return cls.from_json(read_json(path, "board file", BuildError, MAX_BOARD_BYTES), str(path))


def as_board(board, where: str = "board") -> Board:
    """A Board from a Board (as is), a board dict (validated; a partial one gets
    PARTIAL_DEFAULTS) or None (the generic board)."""
    if isinstance(board, Board):
        return board
    if board is None:
        board = {}
    if not isinstance(board, dict):
        raise BuildError(f"{where}: a board must be a Board or a dict, got {type(board).__name__}")
    return validate_board(board, where, partial=True)


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


def load_board(name: str) -> Board:
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


def _clock(value, where: str):
    """A PL clock in [1, 1000] MHz (int or float, not bool, finite)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 1 <= value <= 1000:
        raise BuildError(f"{where}: 'clock_mhz' must be in [1, 1000] MHz, got {value!r:.40}")
    return value


def _partial(board: dict) -> dict:
    """A partial board dict completed with PARTIAL_DEFAULTS; family and ps follow each other
    (and an UltraScale+ part: xczu*, xck*), so a dict naming one gets the matching other."""
    b = {**{k: v for k, v in PARTIAL_DEFAULTS.items() if k not in board}, **board}
    part = str(b.get("part", "")).lower()
    if "family" not in b:
        b["family"] = ("xcup" if b.get("ps") == "zynq_ultra" or part.startswith(("xczu", "xck"))
                       else "xc7")
    if "ps" not in b:
        b["ps"] = "zynq_ultra" if b["family"] == "xcup" else "zynq7"
    return b


def validate_board(board, where: str = "board", partial: bool = False) -> Board:
    """A Board from a board dict, every field checked and every optional one resolved.
    partial=True (as_board): missing required fields take PARTIAL_DEFAULTS, and an empty or
    missing 'resources' is allowed (no capacity known)."""
    if not isinstance(board, dict):
        raise BuildError(f"{where}: a board file must be a JSON object")
    if partial:
        board = _partial(board)
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
    family = _field(board, "family", where, str)
    if family not in FAMILIES:
        raise BuildError(f"{where}: 'family' must be one of {', '.join(FAMILIES)}, got {family!r:.40}")
    ps = _field(board, "ps", where, str)
    if ps not in PS_KINDS:
        raise BuildError(f"{where}: 'ps' must be one of {', '.join(PS_KINDS)}, got {ps!r:.40}")
    if (ps == "zynq_ultra") != (family == "xcup"):
        raise BuildError(f"{where}: 'ps' {ps} does not match 'family' {family} (zynq7 goes with xc7, "
                         "zynq_ultra with xcup)")
    zynqmp = ps == "zynq_ultra"
    tokens = {}
    defaults = {"part": "", "vivado_board_part": "", "board_part": "", "preset": "",
                "hp_port": "S_AXI_HP0_FPD" if zynqmp else "S_AXI_HP0"}
    for key, default in defaults.items():
        value = _field(board, key, where, str, default)
        if value and not _TOKEN.fullmatch(value):
            raise BuildError(f"{where}: '{key}' {value!r:.60} must be letters, digits and "
                             "'_.:-' (at most 128)")
        tokens[key] = value
    if not tokens["part"]:
        raise BuildError(f"{where}: 'part' must not be empty")
    res = _field(board, "resources", where, dict)
    bad = sorted(map(str, set(res) - set(RESOURCES)))
    if bad:
        raise BuildError(f"{where}: unknown resource(s) {', '.join(bad)} "
                         f"(known: {', '.join(RESOURCES)})")
    resources = {}
    for key in RESOURCES:
        if key not in res:
            if key in OPTIONAL_RESOURCES or (partial and not res):
                continue
            raise BuildError(f"{where}: resources.{key} is missing")
        v = res[key]
        low = 0 if key in OPTIONAL_RESOURCES else 1
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= 10**8:
            raise BuildError(f"{where}: resources.{key} must be an integer in [{low}, 1e8], "
                             f"got {v!r:.40}")
        resources[key] = v              # URAM 0: none (as if absent)
    if resources.get("URAM") and family != "xcup":
        raise BuildError(f"{where}: resources.URAM is {resources['URAM']}, but UltraRAM exists "
                         "on UltraScale+ parts only (family xcup)")
    clock = _clock(_field(board, "clock_mhz", where, (int, float)), where)
    dma = _field(board, "dma_data_width", where, int, 128 if zynqmp else 64)
    if dma not in DMA_WIDTHS:
        raise BuildError(f"{where}: 'dma_data_width' must be one of "
                         f"{', '.join(map(str, DMA_WIDTHS))}, got {dma!r}")
    dram = _dram(board, where, ps)
    return Board(name=out["name"], part=tokens["part"], family=family, ps=ps, clock_mhz=clock,
                 resources=resources, description=out["description"],
                 board_part=tokens["vivado_board_part"] or tokens["board_part"],
                 preset=tokens["preset"], dma_data_width=dma, hp_port=tokens["hp_port"], **dram)


def _number(value, key: str, where: str, lo: float, hi: float, lo_open: bool = False):
    """A finite int or float (not bool) in [lo, hi] ((lo, hi] when lo_open)."""
    ok = (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
          and (lo < value if lo_open else lo <= value) and value <= hi)
    if not ok:
        span = f"({lo:g}, {hi:g}]" if lo_open else f"[{lo:g}, {hi:g}]"
        raise BuildError(f"{where}: '{key}' must be a number in {span}, got {value!r:.40}")
    return value


def _dram(board: dict, where: str, ps: str) -> dict:
    """The DRAM fields, checked, absent ones from DRAM_DEFAULTS[ps]."""
    d = {k: board.get(k, v) for k, v in DRAM_DEFAULTS[ps].items()}
    _number(d["dram_peak_mbps"], "dram_peak_mbps", where, 1, 10**6)
    bits = d["dram_port_bits"]
    if isinstance(bits, bool) or not isinstance(bits, int) or bits not in DRAM_PORT_WIDTHS:
        raise BuildError(f"{where}: 'dram_port_bits' must be one of "
                         f"{', '.join(map(str, DRAM_PORT_WIDTHS))}, got {bits!r:.40}")
    _number(d["dram_efficiency"], "dram_efficiency", where, 0, 1, lo_open=True)
    return d
