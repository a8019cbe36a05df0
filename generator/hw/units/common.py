"""What every unit plan is made of: the window generator, the tap widener, memories, the
output FIFO rule and the pipeline depths. One owner per fact: the backends render these
numbers, the cost model prices them, the folding enumerates them."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...core.errors import BuildError
from ..ir import Stream, clog2, next_pow2

# Pipeline depth of each library unit: cycles from the last input beat a unit needs to its
# output beat (rtl/ units; the latency model adds them along the chain).
PIPE = {"swg": 4,       # cf_swg issue -> registered read -> output FIFO
        "mvu": 5,       # cf_mvu stages A-D + output FIFO
        "dsp2": 1,      # cf_mvu MULT 1: the group-sum stage B1
        "smac": 6,      # cf_scalemac stages A-D + output FIFO
        "pool": 2,
        "gsum": 2,
        "resadd": 1,    # cf_resadd: both inputs valid -> output valid in C/SIMD + 2 cycles (measured)
        "fork": 1,      # cf_fork's output registers
        "fifo": 1,
        "widen": 2}     # cf_widen load -> hold -> first wide beat (+ the collect)

# Extra FIFO behind every node (0: none). Every unit already ends in a small output FIFO
# fed by credits (registered valid/ready), so none is needed for correctness or rate.
NODE_FIFO_DEPTH = 0
# matrix-unit outputs at least this wide get a one-slot output register (out_fifo_depth)
OUT_SLOT_BITS = 256
# window-generator buffers of at least this many bits (and 32 pixels) go to block RAM
SWG_BLOCK_BITS = 65536
# cf_swg's own output FIFO (its localparam FD)
SWG_FIFO_DEPTH = 2
# pools and the global sum end in a 2-deep FIFO (their FD parameter)
POOL_FIFO_DEPTH = 2


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def illegal(key: str, value: int, legal: list[int], rule: str) -> str | None:
    """The folding error of one knob (None when `value` is legal)."""
    if value in legal:
        return None
    return f"{key}={value} {rule}; legal {key}: {', '.join(map(str, legal))}"


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise BuildError(msg)


@dataclass(frozen=True)
class Memory:
    """One memory of a unit: `rom` (initialised, read only) or a RAM with one write port."""
    role: str               # weights | params | line_buffer | thresholds | scales | bias | ...
    depth: int
    width: int
    rom: bool
    sync_read: bool = True
    block: bool = False     # ram_style = "block" (else the synthesis tool chooses)
    copies: int = 1

    @property
    def bits(self) -> int:
        return self.depth * self.width * self.copies


def in_block_ram(depth: int, width: int, rom: bool = True, block: bool = False) -> bool:
    """Whether a memory ends up in block RAM (its read then starts with the RAM's clock-to-out):
    a ram_style = "block" memory, or one the synthesis tool's mapping (the technology model)
    puts there."""
    from ..tech import xc7
    return block or xc7.map_memory(depth, width, rom=rom, style="auto")["style"].startswith("RAMB")


def out_fifo_depth(width: int, beats: int) -> int:
    """Depth of a matrix unit's output FIFO (cf_mvu / cf_scalemac FD) for `width`-bit pixels
    completed every `beats` input beats. Few beats per pixel need slack (8); a wide pixel
    completed every 8 or more beats gets a single register slot (cf_fifo DEPTH 1), since
    a 2-deep LUT-RAM FIFO would cost 2/3 LUT per bit; otherwise 2."""
    if beats < 4:
        return 8
    if width >= OUT_SLOT_BITS and beats >= 8:
        return 1
    return 2


def rom_block(depth: int, width: int) -> bool:
    """Weight memories go to block RAM when deep and big enough to fill block RAMs
    reasonably (wide shallow memories are cheaper in LUTs); else the tool decides."""
    return depth >= 64 and depth * width >= 18432


def replicate(value: int, c: int, bits: int) -> int:
    """One pixel with every channel = value (pad pixels)."""
    v = int(value) & ((1 << bits) - 1)
    out = 0
    for ch in range(c):
        out |= v << (ch * bits)
    return out


@dataclass(frozen=True)
class Window:
    """Sliding-window generator (rtl/cf_swg.v, hls/cf_swg.h): per output pixel the k*k taps in
    (ky, kx) order, each in C/SIMD chunks of SIMD channels, replayed NF times; with
    row_taps = k one whole window row (k pixels, SIMD = C) per beat."""
    h: int
    w: int
    c: int
    bits: int
    k: int
    stride: int
    pad: int
    simd: int
    nf: int
    pad_pixel: int
    row_taps: int = 1
    # the unit reads its stream directly when the window is a wire (only the average pool
    # asks for it; the other units keep cf_swg for its output FIFO and pipeline)
    bypass: bool = False

    @property
    def depth(self) -> int:
        """Line-buffer entries (whole pixels): k-1 rows + k pixels, the stride's extra rows,
        and slack for the registered read; a power of two."""
        need = (self.k - 1) * self.w + self.k + (self.stride - 1) * self.w + self.k + 2
        return next_pow2(max(need, 4))

    @property
    def pixel_width(self) -> int:
        return self.c * self.bits

    @property
    def block_ram(self) -> bool:
        """A deep line buffer of wide pixels goes to block RAM (64 pixels of 192 x 17 bits
        would take 4,352 LUTs as LUT RAM); else the tool's choice."""
        return self.depth >= 32 and self.depth * self.pixel_width >= SWG_BLOCK_BITS

    @property
    def out_width(self) -> int:
        return self.row_taps * self.simd * self.bits

    @property
    def chunks(self) -> int:
        return self.c // self.simd

    @property
    def line_buffer(self) -> Memory:
        return Memory("line_buffer", self.depth, self.pixel_width, rom=False, sync_read=True,
                      block=self.block_ram, copies=self.row_taps)

    @property
    def identity(self) -> bool:
        """A 1x1 stride-1 unpadded window: HLS passes the stream through (or splits it)."""
        return self.k == 1 and self.stride == 1 and self.pad == 0

    @property
    def can_wire(self) -> bool:
        """An identity window of whole pixels replayed once: a core could read the stream."""
        return self.identity and self.simd == self.c and self.nf == 1 and self.row_taps == 1

    @property
    def wire(self) -> bool:
        """No window generator at all: the core reads its input stream (both backends; the
        cost model prices no cf_swg)."""
        return self.bypass and self.can_wire


def window(s: Stream, k: int, stride: int, pad: int, simd: int, nf: int, pad_pixel: int,
           row_taps: int = 1, where: str = "") -> Window:
    check(s.h + 2 * pad >= k and s.w + 2 * pad >= k,
          f"{where}: kernel {k} larger than the padded {s.h}x{s.w} image")
    check(s.c % simd == 0, f"{where}: window SIMD {simd} must divide C {s.c}")
    check(row_taps in (1, k) and (row_taps == 1 or simd == s.c),
          f"{where}: row taps {row_taps} need k = {k} taps and SIMD = C {s.c}")
    return Window(s.h, s.w, s.c, s.bits, k, stride, pad, simd, nf, pad_pixel, row_taps)


@dataclass(frozen=True)
class Widen:
    """Tap widener (rtl/cf_widen.v, hls/cf_widen.h): R narrow beats of IW bits (one tap, or
    one window row of taps) per wide beat of R*IW bits; R*SF narrow beats per window, the
    window replayed as SF wide beats NF times."""
    iw: int
    r: int
    sf: int
    nf: int

    @property
    def out_width(self) -> int:
        return self.r * self.iw

    @property
    def in_beats(self) -> int:
        return self.r * self.sf

    def window_cycles(self) -> float:
        """Cycles per window at full rate: M = R*SF beats in, N = NF*SF beats out; a full
        collect register moved into a busy hold costs the input one cycle (alternately M and
        M + 1 when N = M), cf. the header of rtl/cf_widen.v."""
        m, n = self.in_beats, self.nf * self.sf
        return float(n) if n > m else (float(m) if n < m else m + 0.5)

    @property
    def ctrl_bits(self) -> int:
        """cf_widen's counters: collected beats, chunk and replay indices."""
        return clog2(self.in_beats + 1) + (clog2(self.sf) if self.sf > 1 else 0) + \
            (clog2(self.nf) if self.nf > 1 else 0)


@dataclass(frozen=True)
class Plan:
    """A folded node as hardware: cycles, pipeline depth, its window generator and widener
    (if any), its core unit's parameters (`core`, one dataclass per kind) and memories."""
    name: str
    kind: str
    cycles: int             # per frame, steady state
    pixel_cycles: float     # core cycles per output pixel (the latency model's work)
    pipe: int               # cycles from the last input beat a pixel needs to its output
    window: Window | None
    widen: Widen | None
    core: object
    memories: tuple         # Memory, ...
    fifo_depth: int         # the core's output FIFO
    out_width: int
    out_beats: int
    lanes: int = 0          # channels per beat the core processes (pools: node.simd)


def pixel_rate_cycles(out_pixels: int, per_pixel: float, in_pixels: int) -> int:
    """A unit that spends per_pixel cycles on each output pixel behind a window generator
    reading one input pixel per cycle."""
    return max(math.ceil(out_pixels * per_pixel), in_pixels)
