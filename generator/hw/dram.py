"""Fully-connected weights streamed from DRAM: the one owner of the bandwidth model.

A binary fully-connected layer (a ConvNode whose window is its whole input map: k = H = W,
no padding, one output pixel; how `lower.py` lowers a `linear` layer on a flattened map, and
a k = 1 layer on a 1 x 1 map) whose weights do not fit on chip keeps them in DRAM. An AXI4
read master (`rtl/dram/cf_axi_wread.v`) bursts the layer's weight image once per batch of B
frames, looping from its base address; the matrix unit (`rtl/dram/cf_mvu_dram.v`) holds B input
vectors (a double-buffered batch buffer) and B accumulator sets, and uses every weight word
for all B frames before it takes the next. So the weights cross the DRAM port once per B
frames instead of once per frame.

For a node folded at PE x SIMD with batch B (K = k*k*C_in, SF = K / SIMD, NF = C_out / PE):

    weight words per pass      NW = NF * SF, of WW = PE * SIMD bits (units.conv.weight_words)
    AXI beats per pass         NB = NW * ceil(WW / DW)      (WW >= DW: a word spans beats)
                                  = ceil(NW / floor(DW / WW)) (WW < DW: words share a beat)
    bytes per pass (= batch)   NB * DW / 8                  DW = the board's dram_port_bits
    compute cycles per batch   B * NW                       (one weight word x one frame per cycle)
    DRAM cycles per batch      bytes per pass / (board.dram_bytes_per_cycle)
    cycles per batch           max(compute, DRAM)
    interval per frame         cycles per batch / B  = max(NW, bytes / (B * bytes per cycle))
    bandwidth used             bytes per pass / cycles per batch * clock   (MB/s)

The input side (SF chunk writes per frame, one pixel every C_in / SIMD cycles) and the
output side (NF reads per frame) run beside the compute on their own buffer halves and never
set the interval (SF <= NF * SF). The model is a steady-state one: it leaves out the AXI read
latency, which the read master hides with up to RAW_FIFO / BURST bursts in flight.
Frames leave in batches: a frame waits for the B - 1 after it (a host sends whole batches).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core.errors import BuildError
from .boards import as_board
from . import pipeline
from .ir import ConvNode, clog2
from .units.common import divisors, illegal, in_block_ram

#: batch sizes the folding tries (cf_mvu_dram takes any B >= 1)
BATCHES = (1, 2, 4, 8, 16, 32, 64)
#: beats per AXI read burst (cf_axi_wread BURST): the Zynq-7000 HP ports are AXI3, at most 16
BURST = 16
#: raw beats buffered behind the read master (cf_axi_wread FD): up to 4 bursts in flight
RAW_FIFO = 64
#: the weight words' FIFO between the read master's unpacker and the matrix unit
WORD_FIFO = 2
#: cf_mvu_dram PIPE 0..1 (no partial popcounts: a DRAM-bound layer needs no wide SIMD)
MAX_PIPE = 1


def eligible(node) -> str | None:
    """Why the node cannot stream its weights from DRAM (None when it can): a binary (xnor)
    fully-connected ConvNode, whose window is its whole input map."""
    if not isinstance(node, ConvNode):
        return f"a {node.kind} node has no DRAM-streamed variant (only fully-connected convs)"
    if node.matrix != "xnor":
        return "only binary (xnor) fully-connected layers stream their weights from DRAM"
    s, o = node.inp, node.out
    if not (o.h == 1 and o.w == 1 and node.pad == 0 and node.k == s.h == s.w):
        return (f"not fully connected (k {node.k} over a {s.h}x{s.w} map, pad {node.pad}, "
                f"{o.h}x{o.w} outputs): only a layer whose window is its whole input map "
                "streams its weights from DRAM")
    return None


def is_fc(node) -> bool:
    return eligible(node) is None


def legal_pe(node: ConvNode) -> list[int]:
    return divisors(node.out.c)


def legal_simd(node: ConvNode) -> list[int]:
    """SIMD divides C_in: the batch buffer writes each input pixel as C_in / SIMD chunks."""
    return divisors(node.inp.c)


def folding_error(node: ConvNode, pe: int, simd: int, batch: int) -> str | None:
    why = eligible(node)
    if why:
        return why
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        return f"batch={batch!r:.20} must be a positive integer"
    return (illegal("PE", pe, legal_pe(node), f"must divide its {node.out.c} output channels")
            or illegal("SIMD", simd, legal_simd(node),
                       f"must divide its {node.inp.c} input channels (DRAM-streamed layers "
                       f"write whole channel chunks of each input pixel)"))


@dataclass(frozen=True)
class DramPlan:
    """A DRAM-streamed fully-connected layer at one folding: geometry, the weight stream and
    the activation widths (cf_mvu_dram / cf_axi_wread parameters, the model's figures)."""
    name: str
    pe: int
    simd: int
    batch: int
    kd: int                 # K = k*k*C_in
    co: int
    ci: int                 # C_in: the input pixel's channels (bits)
    pixels: int             # input pixels per frame (H * W)
    port_bits: int          # DW: the AXI data width (board.dram_port_bits)
    act: str                # 'threshold' | 'relu_offset'
    ob: int                 # output bits per channel
    tw: int                 # parameter value bits
    frac: int               # relu_offset fractional bits
    pipe: int = 0           # cf_mvu_dram PIPE: 1 = a register before the popcounts

    @property
    def sf(self) -> int:
        return self.kd // self.simd

    @property
    def nf(self) -> int:
        return self.co // self.pe

    @property
    def words(self) -> int:
        """Weight words per pass (NW)."""
        return self.nf * self.sf

    @property
    def word_bits(self) -> int:
        """WW = PE * SIMD (one bit per weight)."""
        return self.pe * self.simd

    @property
    def beats_per_word(self) -> int:
        """AXI beats one word spans (WW >= DW), 1 when words share beats."""
        return -(-self.word_bits // self.port_bits)

    @property
    def words_per_beat(self) -> int:
        """Words one AXI beat holds (WW < DW), 1 when a word spans beats."""
        return max(1, self.port_bits // self.word_bits)

    @property
    def beats(self) -> int:
        """AXI beats per pass (NB)."""
        if self.word_bits >= self.port_bits:
            return self.words * self.beats_per_word
        return -(-self.words // self.words_per_beat)

    @property
    def bytes_per_batch(self) -> int:
        """Bytes read from DRAM per pass, i.e. per batch of B frames."""
        return self.beats * self.port_bits // 8

    @property
    def weight_bits(self) -> int:
        return self.co * self.kd

    @property
    def compute_cycles(self) -> int:
        """Cycles of one batch at one (weight word, frame) pair per cycle: B * NW."""
        return self.batch * self.words

    def dram_cycles(self, bytes_per_cycle: float) -> float:
        """Cycles the DRAM port needs for one pass at `bytes_per_cycle`."""
        return self.bytes_per_batch / bytes_per_cycle

    def batch_cycles(self, bytes_per_cycle: float) -> float:
        return max(float(self.compute_cycles), self.dram_cycles(bytes_per_cycle))

    def interval(self, bytes_per_cycle: float) -> float:
        """Cycles per frame in the steady state: max(compute, DRAM) per batch / B."""
        return self.batch_cycles(bytes_per_cycle) / self.batch

    def cycles(self, bytes_per_cycle: float) -> int:
        """The interval rounded up to whole cycles (what the folding compares)."""
        return int(math.ceil(self.interval(bytes_per_cycle) - 1e-9))

    def bandwidth_mbps(self, bytes_per_cycle: float, clock_mhz: float) -> float:
        """DRAM bandwidth the layer uses at its interval (MB/s = 1e6 bytes/s)."""
        return self.bytes_per_batch / self.batch_cycles(bytes_per_cycle) * clock_mhz

    def bound(self, bytes_per_cycle: float) -> str:
        return "dram" if self.dram_cycles(bytes_per_cycle) > self.compute_cycles else "compute"

    # --- cf_mvu_dram buffers (priced by perf.dram_res) ---
    @property
    def cw(self) -> int:
        """Accumulator bits (cf_mvu_dram CW, as cf_mvu's for xnor): popcounts in [0, K]."""
        return clog2(self.kd + 1) + 1

    @property
    def ibuf_depth(self) -> int:
        """Batch buffer words (SIMD bits each): two halves of B frames of SF chunks."""
        return 2 * self.batch * self.sf

    @property
    def obuf_depth(self) -> int:
        """Output buffer words (PE * OB bits each): two halves of B frames of NF folds."""
        return 2 * self.batch * self.nf


def plan(node: ConvNode, board=None, pe: int | None = None, simd: int | None = None,
         batch: int | None = None, pipe: int | None = None,
         params: dict | None = None) -> DramPlan:
    """The DRAM plan of a fully-connected node at PE x SIMD and batch B (default: the node's
    own pe, simd, batch and pipe); the AXI width is the board's dram_port_bits. params:
    units.conv.parameters(node), when the caller has it (it does not depend on the folding)."""
    from .units import conv

    b = as_board(board)
    pe = node.pe if pe is None else pe
    simd = node.simd if simd is None else simd
    batch = int(getattr(node, "batch", 1) or 1) if batch is None else batch
    pipe = min(int(node.pipe), MAX_PIPE) if pipe is None else pipe
    err = folding_error(node, pe, simd, batch)
    if err:
        raise BuildError(f"node {node.name}: {err}")
    if pipe not in range(MAX_PIPE + 1):
        raise BuildError(f"node {node.name}: pipe {pipe!r:.20} must be 0 .. {MAX_PIPE}")
    p = params or conv.parameters(node)     # the activation's widths
    s = node.inp
    return DramPlan(node.name, pe, simd, batch, node.K, node.out.c, s.c, s.h * s.w,
                    b.dram_port_bits, node.act, p["ob"], p["tw"], p["frac"], pipe)


def choose_pipe(simd: int, batch: int, sf: int, clock_mhz: float | None) -> int:
    """cf_mvu_dram PIPE for the clock: the fewest stages whose popcount path fits the period
    (pipeline.mvu_path_ns; the chunk comes from the batch buffer, in block RAM when large)."""
    bram = in_block_ram(2 * batch * sf, simd, rom=False)
    for pipe in range(MAX_PIPE + 1):
        if pipeline.mvu_path_ns("xnor", simd, bram, pipe) <= pipeline.period_ns(clock_mhz):
            return pipe
    return MAX_PIPE


def meets_clock(p: DramPlan, clock_mhz: float | None) -> bool:
    bram = in_block_ram(p.ibuf_depth, p.simd, rom=False)
    return pipeline.mvu_path_ns("xnor", p.simd, bram, p.pipe) <= pipeline.period_ns(clock_mhz)


def summary(p: DramPlan, board) -> dict:
    """The figures the folding summary and the report show for one DRAM-streamed layer."""
    b = as_board(board)
    bpc = b.dram_bytes_per_cycle
    return {"batch": p.batch, "pe": p.pe, "simd": p.simd, "port_bits": p.port_bits,
            "weight_bits": p.weight_bits, "bytes_per_batch": p.bytes_per_batch,
            "compute_cycles_per_batch": p.compute_cycles,
            "dram_cycles_per_batch": round(p.dram_cycles(bpc), 1),
            "cycles_per_batch": round(p.batch_cycles(bpc), 1),
            "interval_cycles": p.cycles(bpc), "bound": p.bound(bpc),
            "bandwidth_mbps": round(p.bandwidth_mbps(bpc, b.clock_mhz), 1),
            "bandwidth_available_mbps": round(b.dram_mbps, 1),
            "clock_mhz": b.clock_mhz}


def best_batch(node: ConvNode, board, pe: int, simd: int, target: float | None = None,
               batches=BATCHES) -> int:
    """The smallest batch whose interval is within `target` cycles (default: the compute
    bound NW, where a larger batch gains nothing); the largest tried when none is."""
    b = as_board(board)
    bpc = b.dram_bytes_per_cycle
    best = None
    for B in batches:
        p = plan(node, b, pe, simd, B)
        goal = p.words if target is None else target
        if p.interval(bpc) <= goal + 1e-9:
            return B
        best = B
    return best


# ---------------------------------------------------------------------------------------
# The weight image in DRAM and the on-chip parameters (cf_axi_wread / cf_mvu_dram layout)

def weight_words(node: ConvNode, p: DramPlan) -> np.ndarray:
    """[NW] Python ints: word nf*SF + sf, lane p, element i at bit p*SIMD + i =
    w[nf*PE + p, sf*SIMD + i] (units.conv.weight_words' order, as cf_mvu's ROM)."""
    w = np.asarray(node.weights).astype(np.int64).reshape(p.co, p.kd)
    wq = w.reshape(p.nf, p.pe, p.sf, p.simd).transpose(0, 2, 1, 3).reshape(p.words, p.word_bits)
    weights = (1 << np.arange(p.word_bits, dtype=object))
    return [int((row.astype(object) * weights).sum()) for row in (wq != 0)]


def image(node: ConvNode, p: DramPlan) -> bytes:
    """The layer's weight image as the read master streams it from its base address, NB
    beats of DW bits, little-endian (byte k of a beat = bits [8k, 8k+8)). A word of WW >= DW
    bits spans ceil(WW/DW) beats, least significant first, zero-padded at the top; words of
    WW < DW bits share a beat, floor(DW/WW) of them, the first in the lowest bits."""
    words = weight_words(node, p)
    dw = p.port_bits
    beats = []
    if p.word_bits >= dw:
        mask = (1 << dw) - 1
        for v in words:
            for j in range(p.beats_per_word):
                beats.append((v >> (j * dw)) & mask)
    else:
        per = p.words_per_beat
        for i in range(0, len(words), per):
            beats.append(sum(v << (k * p.word_bits) for k, v in enumerate(words[i:i + per])))
    assert len(beats) == p.beats
    return b"".join(v.to_bytes(dw // 8, "little") for v in beats)


def param_words(node: ConvNode, p: DramPlan) -> np.ndarray:
    """[NF, PE] {flag, value} lanes of TW+1 bits: cf_mvu's parameter memory (units.conv),
    kept on chip."""
    from .units import conv

    par = conv.parameters(node)
    lanes = (par["value"] & ((1 << p.tw) - 1)) | (par["flag"] << p.tw)
    return lanes.reshape(p.nf, p.pe)
