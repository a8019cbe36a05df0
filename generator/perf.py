"""Analytic performance and resource model of the streaming accelerator, before any simulation.

Cycles: every node is a folded unit that does one beat of work per clock (docs/CONTRACT.md,
rtl/ units): ConvNode and ScaleMacNode take OH*OW * (K/SIMD) * (C_out/PE) cycles per frame,
pools read their k*k window taps one whole pixel per cycle (OH*OW*k*k), GlobalSumNode one
pixel per cycle. The interval of the pipeline is its slowest node. The latency of one frame
on an idle pipeline comes from a pixel-level timing model: every output pixel starts when
its unit is free and the last input pixel of its window has arrived.

Resources: every node is the RTL backend's units (generator/backends/rtl.py):
    conv      sliding window (cf_swg) -> matrix-vector-threshold unit (cf_mvu) -> FIFO
    maxpool   cf_swg -> cf_maxpool -> FIFO,  avgpool  cf_swg -> cf_avgpool -> FIFO
    scalemac  cf_swg (k=1) -> cf_scalemac -> FIFO,  globalsum  cf_globalsum -> FIFO
and each unit is costed from first principles: XNOR+popcount LUTs per SIMD bit and PE,
adders and comparators per bit, registers per bit, multipliers as DSP48E1 slices (one or two
int8 products each) or LUT multipliers, and every memory (weights, thresholds, window line
buffers, FIFOs) through the same choice between block RAM, LUT RAM and logic that Yosys'
memory_libmap makes for xc7 (its cost rules are re-implemented in `map_memory`).
All constants are in the table `C` below, with where each one comes from; they were
calibrated against Yosys 0.23 `synth_xilinx -family xc7` (no ABC9) on the real units
(bench/yosys_units.py, bench/compare_synth.py; docs/FOLDING.md has the numbers).

Cells are counted like bench/yosys_units.py counts them: LUT = LUT1..LUT6 + the LUTs of
LUT RAM / shift registers (RAM32M = 4, ...), FF = FDRE/FDSE/..., BRAM36 = RAMB36E1 +
RAMB18E1/2, DSP = DSP48E1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .ir import (AvgPoolNode, ConvNode, Graph, GlobalSumNode, MaxPoolNode, ScaleMacNode,
                 signed_bits, unsigned_bits)

RESOURCES = ("LUT", "FF", "BRAM36", "DSP")

# ---------------------------------------------------------------------------------------
# The model's constants: one table. "fit" = fitted to Yosys on real units (docs/FOLDING.md,
# "Calibration"), "measured" = a direct Yosys measurement, "rule" = a fact of the xc7
# architecture or of Yosys' rules, "model" = an estimate for hardware the RTL lacks.
C = {
    # --- XNOR + popcount (cf_mvu MATRIX 0), per PE ---------------------------------------
    # fit: XNOR + popcount inside cf_mvu (bench/yosys_units.py --mvu-sweep: weights in BRAM,
    # SIMD x PE = 8x4 .. 160x1, the rest of the unit from this model): 2.57 LUT per bit,
    # residuals within 12 %. (Alone, a registered $countones costs about twice as much:
    # 3.0 LUT/bit at N = 8 up to 5.1 at N = 160, bench/yosys_units.py --popcount.)
    "xnor_lut_nlogn": 0.0,
    "xnor_lut_per_bit": 2.57,
    # --- accumulators, comparators, adders ----------------------------------------------
    "adder_lut_per_bit": 1.0,       # rule: one LUT (+ CARRY4) per bit of a 2-input adder
    "mux_adder_lut_per_bit": 2.0,   # fit: adder whose input is muxed to 0 (cf_globalsum)
    "cmp_lut_per_bit": 0.5,         # fit: magnitude comparator vs a stored value, per bit
    "cmp_const_lut_per_bit": 0.35,  # fit: comparator against a constant, per bit
    "avg_cmp_lut_per_bit": 0.5,     # fit: cf_avgpool threshold (chain test, NIN avgpool19)
    "relu_lut_per_bit": 1.0,        # fit: relu_offset shift-add + clamp, per output bit
    # --- multipliers ---------------------------------------------------------------------
    "dsp_a_width": 25,              # rule: DSP48E1 A port (signed)
    "dsp_b_width": 18,              # rule: DSP48E1 B port (signed)
    "lut_mult8_lut": 129,           # measured: one registered 9x8-bit signed multiplier in LUTs
                                    # (Yosys 0.23 synth_xilinx -nodsp: 2061 LUT for 16)
    # dsp2 (cf_mvu MULT 1): two products per DSP48E1 (shared pixel x - 128, weights at bits 0
    # and 17 of A), G = 4 products summed in the DSP cascade per pair, then per lane a
    # balanced tree of cf_add carry-chain adders over the SIMD/G group sums (17 + height
    # bits each), the dot register db in fabric, and one more pipeline stage (parameters).
    "dsp2_group": 4,                # rule: products per DSP chain before the lanes are split
    "dsp2_tree_lut_per_bit": 1.0,   # measured: cf_mvu alone, Yosys 0.23 (no ABC9), dsp2 - dsp
                                    # LUT: PE 4 x SIMD 75 +1,360 (= 4 x 340 tree bits), PE 2 x
                                    # SIMD 9 +74 (2 x 37), PE 96 x SIMD 3 +0 (no tree);
                                    # DSP 150 / 9 / 144 = ceil(PE/2) * SIMD (docs/FOLDING.md)
    "int8_tree_lut_per_bit": 1.0,   # rule: adder tree of SIMD products, per bit per adder
    "int8_acc_lut_per_bit": 2.0,    # fit: int8 accumulator with its clear mux (tiny, NIN conv1)
    # --- registers / control ----------------------------------------------------------
    "mvu_ctrl_lut": 30,             # fit: cf_mvu counters, credits, valid pipeline
    "mvu_ctrl_ff": 16,
    "swg_ctrl_lut": 95,             # fit: cf_swg window counters, address arithmetic
    "swg_ctrl_ff": 45,
    "swg_ctrl_lut_per_addr_bit": 2.0,  # fit: grows with the buffer / frame address width
    "swg_mux_scale": 1.0,           # fit: cf_swg chunk multiplexer vs mux_luts()
    "swg_mux_scale_bram": 1.6,      # fit: NIN avgpool19 buffer in block RAM (64 x 3,264 bits, 32 chunks): select 1,390 LUT
    "swg_pad_lut_per_bit": 1.0,     # fit: pad set/reset of the read register, per pixel bit
    "swg_pad_lut_per_bit_wide_mux": 0.15,  # fit: the same, multi-bit pixels cut in > 8 chunks
    "swg_fifo_depth": 2,            # rule: cf_swg output FIFO (localparam FD)
    "pool_ctrl_lut": 10,
    "fifo_ctrl_lut": 8,             # fit: cf_fifo pointers and count (depth 2)
    "fifo_slot_lut": 2,             # cf_fifo DEPTH 1: full flag next state and ready (estimate)
    "fifo_ctrl_ff": 5,
    "smac_ctrl_lut": 60,            # fit: cf_scalemac counters
    "smac_ctrl_ff": 40,
    # cf_widen (tap-parallel convolutions): measured, bench/yosys_units.py cf_widen, e.g.
    # IW 24 R 25 SF 1 NF 48: 18 LUT / 1,212 FF; IW 24 R 5 SF 5 NF 48: 264 LUT / 1,215 FF;
    # IW 24 R 7 SF 7 NF 4: 524 / 2,364; IW 16 R 3 SF 3 NF 4: 64 / 297. FFs = the collect
    # and hold registers (2 windows) + counters, exactly; LUTs = the SF:1 chunk mux + control
    "widen_ctrl_lut": 7,            # measured: handshake, load, plus 1 LUT per counter bit
    "widen_ctrl_lut_per_bit": 1.0,
    "widen_mux_lut_small": 1.0,     # measured: SF <= 4, one LUT per output bit (SF 2, 3)
    "widen_mux_lut_per_sel": 0.5,   # measured: SF 5..8, (SF-1)/2 LUT per bit (2.0 at SF 5, 3.0 at 7)
    # --- memories (Yosys memory_libmap for xc7, passes/memory/memory_libmap.cc) --------
    "logic_cost_rom": 1.0 / 64,     # rule: synth_xilinx passes -logic-cost-rom 1/64 to memory_libmap
    "logic_cost_ram": 1.0,          # rule: per RAM bit in flip-flops
    "rom_lut_per_64b": 1.2,         # fit: LUT6 per 64 ROM bits mapped to logic (NIN conv2-6)
    "rom_mux_lut_per_256b": 0.5,    # fit: extra mux LUTs per 256 words per bit beyond 256
    "bram_mux_lut_per_bit": 1.0,    # rule: read mux when a memory spans several RAMs in depth
    # --- latency: cycles from the last input beat a unit needs to its output beat -------
    "pipe_swg": 4,                  # rule: cf_swg issue -> registered read -> output FIFO
    "pipe_mvu": 5,                  # rule: cf_mvu stages A-D + output FIFO
    "pipe_smac": 6,                 # rule: cf_scalemac stages A-D + output FIFO
    "pipe_pool": 2,
    "pipe_gsum": 2,
    "pipe_fifo": 1,
    "pipe_widen": 2,                # rule: cf_widen load -> hold -> first wide beat (+ the collect)
}


@dataclass
class Res:
    LUT: float = 0.0
    FF: float = 0.0
    BRAM36: float = 0.0
    DSP: float = 0.0
    detail: dict = field(default_factory=dict)   # part -> LUT/FF/BRAM36/DSP dict

    def add(self, part: str, lut=0.0, ff=0.0, bram=0.0, dsp=0.0) -> "Res":
        self.LUT += lut
        self.FF += ff
        self.BRAM36 += bram
        self.DSP += dsp
        d = self.detail.setdefault(part, {"LUT": 0.0, "FF": 0.0, "BRAM36": 0.0, "DSP": 0.0})
        d["LUT"] += lut
        d["FF"] += ff
        d["BRAM36"] += bram
        d["DSP"] += dsp
        return self

    def merge(self, other: "Res", prefix: str = "") -> "Res":
        for part, d in other.detail.items():
            self.add(prefix + part, d["LUT"], d["FF"], d["BRAM36"], d["DSP"])
        return self

    def as_dict(self, detail: bool = False) -> dict:
        d = {"LUT": int(round(self.LUT)), "FF": int(round(self.FF)),
             "BRAM36": round(self.BRAM36 * 2) / 2, "DSP": int(round(self.DSP))}
        if detail:
            d["parts"] = {k: {r: round(v[r], 1) for r in RESOURCES} for k, v in self.detail.items()}
        return d


def clog2(n: int) -> int:
    return max(0, (int(n) - 1).bit_length())


def next_pow2(n: int) -> int:
    p = 1
    while p < n:
        p <<= 1
    return p


# ---------------------------------------------------------------------------------------
# Memories: which of block RAM / LUT RAM / logic Yosys picks, and what it costs.
# Library (Yosys share/xilinx/brams_xc4v.txt with HAS_SIZE_36, lutrams_xc5v.txt):
# name, cost, widthscale, abits, widths (index = log2 of the base width step), byte,
# fixed port width (SDP block RAM ports are 36 / 72 wide), kind, BRAM36 per instance.
_BRAM = [
    ("RAMB18_TDP", 129, 0, 14, (1, 2, 4, 9, 18), 9, None, 0.5),
    ("RAMB36_TDP", 257, 0, 15, (1, 2, 4, 9, 18, 36), 9, None, 1.0),
    ("RAMB18_SDP", 129, 0, 14, (1, 2, 4, 9, 18, 36), 9, 36, 0.5),
    ("RAMB36_SDP", 257, 0, 15, (1, 2, 4, 9, 18, 36, 72), 9, 72, 1.0),
]
# LUT RAMs (never for ROMs: prune_rom). Our RAMs have separate read/write addresses,
# so the single-port type does not apply. (name, cost, widthscale, abits, width, LUTs/inst)
_LUTRAM = [
    ("RAM32M_SDP", 8, 7, 5, 6, 4),
    ("RAM64M_SDP", 8, 7, 6, 3, 4),
    ("RAM32X1D_DP", 8, 8, 5, 4, 4),
    ("RAM64X1D_DP", 8, 8, 6, 2, 4),
    ("RAM128X1D_DP", 8, 8, 7, 1, 4),
]


def map_memory(depth: int, width: int, rom: bool, sync_read: bool = True,
               style: str = "auto") -> dict:
    """Emulate Yosys 0.23 memory_libmap for xc7 on a memory with one read port and (unless
    `rom`) one write port with a single enable. Returns the chosen style and its cells.
    style 'block': a ram_style = "block" attribute (cheapest block RAM geometry)."""
    depth, width = max(1, int(depth)), max(1, int(width))
    bits = depth * width
    cands = []
    logic_cost = int(bits * (C["logic_cost_rom"] if rom else C["logic_cost_ram"]))
    # block RAMs
    for name, cost, ws, abits, dbits, byte, fixed, per in _BRAM:
        best = None
        for b, unit in enumerate(dbits):
            if fixed is not None and not rom and unit < 9:
                continue                       # narrow write port below a byte: not allowed
            eff = 1 if rom else min(byte, unit)
            swz = -(-width // eff) * eff
            addrs = 1 << (abits - b)
            mult_a = (depth - 1) // addrs + 1
            repl = -(-(mult_a * swz) // unit)
            demux = mult_a if (not rom and mult_a != 1) else 0
            mux = (mult_a - 1) * width
            c = (cost - ws) * repl + ws * (mult_a * width // unit) + 0.5 * mux + 0.5 * demux + 2 * 1
            if best is None or c < best[0]:
                best = (c, repl, mult_a, name, per)
        cands.append(("bram",) + best)
    if not rom:
        for name, cost, ws, abits, unit, luts in _LUTRAM:
            addrs = 1 << abits
            mult_a = (depth - 1) // addrs + 1
            repl = -(-(mult_a * width) // unit)
            demux = mult_a if mult_a != 1 else 0
            mux = (mult_a - 1) * width
            emu = 1 if name.endswith("SDP") else 0
            c = (cost - ws) * repl + ws * (mult_a * width // unit) + 0.5 * mux + 0.5 * demux + 2 * emu
            cands.append(("lutram", c, repl, mult_a, name, luts))
    if style == "block":
        cands = [c for c in cands if c[0] == "bram"]
    best = min(cands, key=lambda t: t[1])
    if style != "block" and best[1] >= logic_cost:
        # logic: ROM as LUTs (+ output register), RAM as flip-flops + read mux
        if rom:
            # every output bit is a boolean function of the address; identical functions
            # (and their registers) are merged, constants vanish: a shallow ROM has at most
            # 2^(2^a) - 2 distinct non-constant bits (a address bits)
            a = clog2(depth)
            distinct = width if a >= 4 else min(width, max(0, 2 ** (2 ** a) - 2))
            lut = distinct * (C["rom_lut_per_64b"] * max(1, depth / 64)
                              + C["rom_mux_lut_per_256b"] * max(0, depth / 256 - 1))
            if depth <= 2:
                lut = 0.0       # a register of the address bit (or its inverse)
            return {"style": "logic", "LUT": lut, "FF": distinct if sync_read else 0,
                    "BRAM36": 0.0, "distinct": distinct}
        mux = width * max(0, (depth - 1)) / 4.0
        return {"style": "ff", "LUT": mux + width * 0.5, "FF": bits + (width if sync_read else 0),
                "BRAM36": 0.0}
    kind, c, repl, mult_a, name, per = best
    mux_lut = (mult_a - 1) * width * C["bram_mux_lut_per_bit"]
    if kind == "bram":
        return {"style": name, "LUT": mux_lut, "FF": 0, "BRAM36": repl * per, "instances": repl}
    # LUT RAM: async read; a sync read port gets an output register of `width` FFs
    return {"style": name, "LUT": repl * per + mux_lut, "FF": width if sync_read else 0,
            "BRAM36": 0.0, "instances": repl}


# ---------------------------------------------------------------------------------------
# Multipliers

def dsp_per_mult(a_bits: int, b_bits: int) -> int:
    """DSP48E1 slices Yosys' mul2dsp uses for one signed a x b multiply."""
    a, b = max(a_bits, b_bits), min(a_bits, b_bits)
    if a * b < 9 or b < 2:
        return 0
    return -(-a // (C["dsp_a_width"])) * -(-b // (C["dsp_b_width"]))


MULT_STYLES = ("dsp", "dsp2", "lut")


def int8_products(products: int, style: str, dsp_cap: int | None = None,
                  pe: int | None = None) -> dict:
    """Implementation of `products` uint8 x int8 products per cycle (pe lanes of
    products/pe when pe is given).
    style 'dsp': one product per DSP48E1; 'dsp2': two products of lanes 2j, 2j+1 sharing the
    pixel per DSP48E1 (an odd last lane one per DSP); 'lut': LUT multipliers; dsp_cap
    limits the DSPs, the rest become LUT multipliers. LUT: the LUT multipliers only (the
    dsp2 lane trees are costed by mvu_res)."""
    if style == "lut":
        n_dsp, on_dsp = 0, 0
    elif style == "dsp2":
        if pe:
            simd = products // pe
            pairs, singles = (pe // 2) * simd, (pe % 2) * simd
        else:
            pairs, singles = products // 2, products % 2
        n_dsp = pairs + singles
        if dsp_cap is not None:
            n_dsp = min(n_dsp, max(0, int(dsp_cap)))
        on_dsp = 2 * min(n_dsp, pairs) + max(0, n_dsp - pairs)
    else:
        n_dsp = products
        if dsp_cap is not None:
            n_dsp = min(n_dsp, max(0, int(dsp_cap)))
        on_dsp = n_dsp
    on_lut = products - on_dsp
    lut = on_lut * C["lut_mult8_lut"]
    return {"style": style, "products": products, "dsp": n_dsp, "dsp_products": on_dsp,
            "lut_products": on_lut, "LUT": lut}


# ---------------------------------------------------------------------------------------
# Units

def fifo_res(width: int, depth: int) -> Res:
    r = Res()
    if depth == 1:
        # cf_fifo DEPTH 1: a register slot and a full flag
        r.add("fifo_mem", 0, width)
        r.add("fifo_ctrl", C["fifo_slot_lut"], 1)
        return r
    m = map_memory(depth, width, rom=False, sync_read=False)
    r.add("fifo_mem", m["LUT"], m["FF"], m["BRAM36"])
    aw = max(1, clog2(depth))
    r.add("fifo_ctrl", C["fifo_ctrl_lut"] + 2 * max(0, aw - 1), 2 * aw + clog2(depth + 1))
    return r


def swg_depth(w: int, k: int, stride: int) -> int:
    return next_pow2(max((k - 1) * w + k + (stride - 1) * w + k + 2, 4))


def mux_luts(n: int) -> float:
    """LUT6 per output bit of an n:1 multiplexer (MUXF7/F8 are free)."""
    if n <= 1:
        return 0.0
    if n <= 4:
        return 1.0
    if n <= 16:
        return n / 4.0
    return n / 4.0 + n / 64.0


def swg_res(s, k: int, stride: int, pad: int, simd: int, nf: int, taps: int = 1) -> Res:
    """cf_swg: line buffer of DEPTH whole pixels (one copy per row tap), window counters,
    chunk mux, 2-deep FIFO."""
    r = Res()
    pw = s.c * s.bits
    depth = swg_depth(s.w, k, stride)
    m = map_memory(depth, pw, rom=False, sync_read=True, style=swg_ram_style(depth, pw))
    r.add("swg_buffer", taps * m["LUT"], taps * m["FF"], taps * m["BRAM36"])
    cf = s.c // simd
    ow = taps * simd * s.bits
    # chunk select: a CF:1 multiplexer per output bit; the read register's pad set/reset
    # costs about a LUT per pixel bit when Yosys emulates it around LUT RAM (measured: bit
    # streams and multi-bit pixels read whole or in few chunks yes; multi-bit pixels cut
    # in many chunks mostly not)
    sel = ow * mux_luts(cf) * C["swg_mux_scale"] if cf > 1 else 0.0
    if m["style"].startswith("RAMB"):
        sel *= C["swg_mux_scale_bram"]
    if m["style"] != "logic" and not m["style"].startswith("RAMB"):
        sel += taps * pw * (C["swg_pad_lut_per_bit"] if (s.bits == 1 or cf <= 8)
                            else C["swg_pad_lut_per_bit_wide_mux"])
    r.add("swg_select", sel, 0)
    qw = clog2(s.h * s.w + depth + s.w * k + 2) + 2
    xw = clog2(s.h + s.w + 2 * pad + k + 2) + 2
    ctrl_ff = (C["swg_ctrl_ff"] + 2 * qw + 2 * xw + clog2(depth) * 2 + clog2(nf) + clog2(cf)
               - 40)
    r.add("swg_ctrl", C["swg_ctrl_lut"] + C["swg_ctrl_lut_per_addr_bit"] * (qw - 10),
          max(ctrl_ff, 20))
    return r.merge(fifo_res(ow, C["swg_fifo_depth"]), "swg_")


def out_fifo_depth(width: int, beats: int) -> int:
    """Output FIFO depth of a matrix unit (rtl.out_fifo_depth)."""
    try:
        from .backends import rtl
        return rtl.out_fifo_depth(width, beats)
    except Exception:       # no RTL backend in this install
        return 8 if beats < 4 else 2


def swg_ram_style(depth: int, width: int) -> str:
    """The ram_style the RTL backend gives a window generator's buffer (rtl.swg_ram_style)."""
    try:
        from .backends import rtl
        return "block" if rtl.swg_ram_style(depth, width) == 1 else "auto"
    except Exception:       # no RTL backend in this install
        return "auto"


def tap_parallel(node) -> bool:
    """A convolution taking SIMD = m*C_in (m > 1 whole taps) per beat: cf_swg (SIMD = C_in,
    NF = 1) -> cf_widen -> cf_mvu."""
    return isinstance(node, ConvNode) and node.simd > node.inp.c


def swg_taps(node) -> int:
    """Window-row taps per cf_swg beat of a tap-parallel convolution: K when its m = SIMD /
    C_in whole taps per beat are whole window rows (m a multiple of K) and whole pixels
    (k*k beats per window) would be slower than the replay (NF*SF beats), else 1: the row
    taps cost K copies of the line buffer."""
    if not tap_parallel(node) or node.k < 2:
        return 1
    k, sf, nf = node.k, node.K // node.simd, node.out.c // node.pe
    return k if (node.simd // node.inp.c) % k == 0 and k * k > nf * sf else 1


def widen_mux_luts(sf: int) -> float:
    """LUTs per output bit of cf_widen's SF:1 chunk select (Yosys builds LUT chains)."""
    if sf <= 1:
        return 0.0
    if sf <= 4:
        return C["widen_mux_lut_small"]
    return (sf - 1) * C["widen_mux_lut_per_sel"]


def widen_res(iw: int, r: int, sf: int, nf: int) -> Res:
    """cf_widen: collect and hold registers of one window (R*SF taps of IW bits each),
    the SF:1 select of the hold's chunks, counters."""
    res = Res()
    n = r * sf
    ctrl_bits = clog2(n + 1) + (clog2(sf) if sf > 1 else 0) + (clog2(nf) if nf > 1 else 0)
    res.add("widen_regs", 0, 2 * n * iw)
    res.add("widen_select", r * iw * widen_mux_luts(sf), 0)
    res.add("widen_ctrl", C["widen_ctrl_lut"] + C["widen_ctrl_lut_per_bit"] * ctrl_bits,
            ctrl_bits + 1)
    return res


def widen_window_cycles(m: int, n: int) -> float:
    """cf_widen cycles per window at full rate: m narrow beats in, n wide beats out; a full
    collect register moved into a busy hold costs the input one cycle (alternately m and
    m + 1 when n = m), cf. the header of rtl/cf_widen.v."""
    return float(n) if n > m else (float(m) if n < m else m + 0.5)


def conv_pixel_cycles(node: ConvNode) -> float:
    """Cycles per output pixel of a ConvNode at its folding (fractional only for a
    tap-parallel node with NF*SF = R*SF)."""
    sf, nf = node.K // node.simd, node.out.c // node.pe
    if not tap_parallel(node):
        return float(sf * nf)
    return widen_window_cycles((node.simd // node.inp.c) // swg_taps(node) * sf, nf * sf)


def weight_rom_style(depth: int, width: int) -> str:
    """The ram_style the RTL backend gives a weight memory (rtl.rom_style: 1 = block RAM)."""
    try:
        from .backends import rtl
        return "block" if rtl.rom_style(depth, width) == 1 else "auto"
    except Exception:       # no RTL backend, or one without cf_rom: the tool decides
        return "auto"


def popcount_luts(n: int) -> float:
    """LUTs of XNOR + popcount over n bit pairs (one PE)."""
    return C["xnor_lut_nlogn"] * n * math.log2(max(n, 2)) + C["xnor_lut_per_bit"] * n


def conv_widths(node: ConvNode) -> dict:
    """Widths the RTL backend derives for a ConvNode (see generator/backends/rtl.py)."""
    K = node.K
    xnor = node.matrix == "xnor"
    # cf_mvu keeps one bit more than the accumulator needs
    if xnor:
        cw = clog2(K + 1) + 1
        dw = clog2(node.simd + 1)
    else:
        cw = max(int(node.acc_bits or 0), 17 + clog2(node.simd + 1)) + 1
        dw = 17 + clog2(node.simd + 1)
    if node.act == "threshold":
        tw = signed_bits(-1, K + 1) if xnor else int(node.acc_bits or cw) + 1
        ob = 1
    else:
        off = np.asarray(node.offset if node.offset is not None else [0], dtype=np.int64)
        tw = signed_bits(int(min(off.min(), 0)), int(max(off.max(), 0)))
        ob = node.out.bits
    return {"cw": cw, "dw": dw, "tw": tw, "ob": ob}


def dsp2_tree_bits(simd: int) -> int:
    """Adder bits of one dsp2 lane tree (rtl/cf_mvu.v g_lane): a balanced heap over the
    ceil(SIMD/G) 17-bit group sums, each cf_add 17 + its height bits wide."""
    ng = -(-simd // C["dsp2_group"])
    L = clog2(ng)
    nl = 1 << L
    bits = 0
    for n in range(1, nl):
        h = L - (n.bit_length() - 1)
        fr = ((2 * n + 1) << (h - 1)) - nl
        if (n << h) - nl < ng and fr < ng:
            bits += 17 + h
    return bits


def mvu_res(node: ConvNode, mult: str = "dsp", dsp_cap: int | None = None) -> tuple[Res, dict]:
    """cf_mvu: weight and parameter memories, PE x SIMD dot products, accumulators,
    activation, output assembly and FIFO."""
    r = Res()
    pe, simd = node.pe, node.simd
    xnor = node.matrix == "xnor"
    K, co = node.K, node.out.c
    sf, nf = K // simd, co // pe
    ib = wb = 1 if xnor else 8
    w = conv_widths(node)
    cw, dw, tw, ob = w["cw"], w["dw"], w["tw"], w["ob"]
    prw = tw + 1
    mw = map_memory(nf * sf, pe * simd * wb, rom=True,
                    style=weight_rom_style(nf * sf, pe * simd * wb))
    info = {"weights_mem": mw["style"]}
    on_dsp = 0
    if not xnor:
        m = int8_products(pe * simd, mult, dsp_cap, pe=pe)
        info["mult"] = m
        on_dsp = m["dsp_products"]
    # the weight register (wa) is the ROM's read register (not absorbed by the DSPs)
    r.add("weights", mw["LUT"], mw["FF"], mw["BRAM36"])
    const_params = nf == 1          # one parameter word: Yosys folds it into constants
    if const_params:
        info["params_mem"] = "constant"
    else:
        mp = map_memory(nf, pe * prw, rom=True)
        info["params_mem"] = mp["style"]
        # pa (the ROM's read register), pb, pc_q: as many as the ROM has distinct bits
        bits = mp.get("distinct", pe * prw)
        r.add("params", mp["LUT"], (mp["FF"] if mp["style"] == "logic" else 0) + 2 * bits,
              mp["BRAM36"])
    if xnor:
        r.add("xnor_popcount", pe * popcount_luts(simd), pe * dw)
    else:
        # products on DSPs: the SIMD sum runs down the DSP cascade (post-adders) and the
        # DSP output register holds db; products in LUTs need an adder tree and db
        frac_lut = 1.0 - on_dsp / (pe * simd)
        tree = pe * max(0, simd - 1) * dw * C["int8_tree_lut_per_bit"] * frac_lut
        if mult == "dsp2":
            # lane trees over the group sums (the DSP P registers hold the group sums), db
            # in fabric; fit: the stage's parameter copy costs no more FFs in Yosys
            tree += pe * dsp2_tree_bits(simd) * C["dsp2_tree_lut_per_bit"]
            ff = pe * dw + 4
        else:
            ff = pe * dw * frac_lut
        r.add("int8_mult", m["LUT"] + tree, ff, 0, m["dsp"])
    acc_lut = C["adder_lut_per_bit"] if xnor else C["int8_acc_lut_per_bit"]
    r.add("accumulate", pe * cw * acc_lut, 2 * pe * cw)
    cmp = C["cmp_const_lut_per_bit"] if const_params else C["cmp_lut_per_bit"]
    if node.act == "threshold":
        r.add("threshold", pe * (max(cw, tw) + 1) * cmp, 0)
    else:
        r.add("relu_offset", pe * ob * C["relu_lut_per_bit"] + pe * (cw + 2) * cmp * 2, 0)
    r.add("input_reg", 0, simd * ib)
    r.add("assembly", 0, (co - pe) * ob if nf > 1 else 0)
    r.add("mvu_ctrl", C["mvu_ctrl_lut"], C["mvu_ctrl_ff"] + 2 * clog2(max(2, nf * sf)))
    r.merge(fifo_res(co * ob, out_fifo_depth(co * ob, sf * nf)), "out_")
    return r, info


def scalemac_res(node: ScaleMacNode, dsp_cap: int | None = None) -> tuple[Res, dict]:
    r = Res()
    s, o = node.inp, node.out
    n, pe, simd = node.n, node.pe, node.simd
    ci, co = s.c, o.c
    sf, nf = ci // simd, co // pe
    gs = min(simd, n)
    gpc, cpg = simd // gs, n // gs
    ib = s.bits
    scw = max(int(node.scale_bits), unsigned_bits(int(np.max(node.scales))) if node.scales is not None else 12)
    bias = np.asarray(node.bias if node.bias is not None else [0], dtype=np.int64)
    bw = signed_bits(int(min(bias.min(), 0)), int(max(bias.max(), 0)))
    prw = ib + 9
    sjw = prw + clog2(gs + 1)
    gpw = max(int(node.group_bits or 1), prw + clog2(n + 1))
    mw_ = gpw + scw + 1 + clog2(gpc + 1)
    zi = max(max(int(node.acc_bits or 1), bw), mw_ + clog2(ci // n + 1) + 1) + 1
    m_w = map_memory(nf * sf, pe * simd * 8, rom=True,
                     style=weight_rom_style(nf * sf, pe * simd * 8))
    m_s = map_memory(sf, gpc * scw, rom=True)
    m_b = map_memory(nf, pe * bw, rom=True)
    r.add("weights", m_w["LUT"], m_w["FF"], m_w["BRAM36"])
    r.add("scales", m_s["LUT"], m_s["FF"], m_s["BRAM36"])
    r.add("bias", m_b["LUT"], m_b["FF"], m_b["BRAM36"])
    n_s = m_s.get("distinct", gpc * scw)
    n_b = m_b.get("distinct", pe * bw)
    # integer MACs inside a group: (IB+1) x 8 signed products
    d_int = dsp_per_mult(ib + (0 if node.inp.kind == "int" else 1), 8)
    r.add("group_macs", pe * gpc * max(0, gs - 1) * sjw * C["int8_tree_lut_per_bit"], 0, 0,
          pe * simd * d_int)
    # the per-group scale multiply: C/n of them per output instead of C
    d_sc = dsp_per_mult(sjw if cpg == 1 else gpw, scw + 1)
    n_sc = pe * (gpc if cpg == 1 else 1)
    r.add("scale_mult", pe * (gpc - 1) * mw_ if cpg == 1 else pe * gpw, 0, 0, n_sc * d_sc)
    r.add("accumulate", pe * zi * C["adder_lut_per_bit"] + pe * o.bits * 0.5, 0)
    # xa, sa/scb, ba/bb/bc, zacc, asmb; the DSPs absorb the weight register (AREG), the
    # sub-sum register sb and the scaled register mc (PREG)
    regs = simd * ib + n_s + n_b * 2 + pe * zi \
        + (co - pe) * o.bits * (nf > 1) + (pe * gpw if cpg > 1 else 0) \
        + (0 if d_int else pe * gpc * sjw) + (0 if d_sc else pe * mw_)
    if m_w["style"] == "logic" and d_int:
        r.detail["weights"]["FF"] -= m_w["FF"]
        r.FF -= m_w["FF"]
    r.add("registers", 0, regs)
    r.add("smac_ctrl", C["smac_ctrl_lut"], C["smac_ctrl_ff"])
    r.merge(fifo_res(co * o.bits, out_fifo_depth(co * o.bits, sf * nf)), "out_")
    return r, {"weights_mem": m_w["style"], "scale_mults": n_sc, "scale_mult_dsp": d_sc}


def maxpool_res(node: MaxPoolNode) -> Res:
    s = node.inp
    r = Res().add("or_window", s.c * 1.0 + C["pool_ctrl_lut"], s.c + clog2(node.k * node.k) + 1)
    return r.merge(fifo_res(s.c, 2), "out_")


def avgpool_res(node: AvgPoolNode, lanes: int | None = None) -> Res:
    """cf_avgpool over `lanes` channels per beat (all of them when None): lanes adders and
    comparators; with CF = C/lanes > 1 the partial sums of all channels sit in a CF-entry
    register file (LUT RAM) and the thresholds in a CF-word ROM."""
    s = node.inp
    lanes = lanes or s.c
    cf = s.c // lanes
    kk = node.k * node.k
    lo, hi = (-(1 << (s.bits - 1)), (1 << (s.bits - 1)) - 1) if s.kind == "int" else (0, (1 << s.bits) - 1)
    sw = max(signed_bits(min(0, lo * kk), hi * kk), int(node.sum_bits or 0))
    sw = max(sw, s.bits) + 1        # cf_avgpool's internal sum width (SWI)
    r = Res()
    r.add("window_sum", lanes * sw * C["mux_adder_lut_per_bit"] + C["pool_ctrl_lut"],
          (s.c * sw if cf == 1 else 0) + clog2(kk) + clog2(cf) + 2)
    r.add("threshold", lanes * (sw + 1) * C["avg_cmp_lut_per_bit"], 0)
    if cf > 1:
        m = map_memory(cf, lanes * sw, rom=False, sync_read=False)
        r.add("partial_sums", m["LUT"], m["FF"], m["BRAM36"])
        tw = sw + 1
        t = map_memory(cf, lanes * (tw + 1), rom=True, sync_read=False)
        r.add("thresholds", t["LUT"], t["FF"], t["BRAM36"])
        r.add("assembly", 0, s.c)
    return r.merge(fifo_res(s.c, 2), "out_")


def globalsum_res(node: GlobalSumNode) -> Res:
    s, o = node.inp, node.out
    r = Res().add("sum", s.c * o.bits * C["mux_adder_lut_per_bit"] + C["pool_ctrl_lut"],
                  s.c * o.bits + clog2(s.h * s.w) + 1)
    return r.merge(fifo_res(s.c * o.bits, 2), "out_")


def node_resources(node, mult: str = "dsp", dsp_cap: int | None = None,
                   lanes: int | None = None) -> tuple[Res, dict]:
    """Resources of one node at its folding (node.pe, node.simd; `lanes`: channels per
    beat of an average pool, all when None)."""
    r, info = Res(), {}
    if isinstance(node, ConvNode) and tap_parallel(node):
        # whole pixels out of the window generator, gathered into SIMD-wide beats
        t = swg_taps(node)
        r.merge(swg_res(node.inp, node.k, node.stride, node.pad, node.inp.c, 1, t), "swg.")
        r.merge(widen_res(t * node.inp.beat_bits, node.simd // node.inp.c // t,
                          node.K // node.simd, node.out.c // node.pe), "widen.")
        m, info = mvu_res(node, mult, dsp_cap)
        r.merge(m, "mvu.")
    elif isinstance(node, ConvNode):
        r.merge(swg_res(node.inp, node.k, node.stride, node.pad, node.simd,
                        node.out.c // node.pe), "swg.")
        m, info = mvu_res(node, mult, dsp_cap)
        r.merge(m, "mvu.")
    elif isinstance(node, ScaleMacNode):
        r.merge(swg_res(node.inp, 1, 1, 0, node.simd, node.out.c // node.pe), "swg.")
        m, info = scalemac_res(node, dsp_cap)
        r.merge(m, "smac.")
    elif isinstance(node, MaxPoolNode):
        r.merge(swg_res(node.inp, node.k, node.stride, node.pad, node.inp.c, 1), "swg.")
        r.merge(maxpool_res(node), "pool.")
    elif isinstance(node, AvgPoolNode):
        lanes = lanes or node.inp.c
        r.merge(swg_res(node.inp, node.k, node.stride, node.pad, lanes, 1), "swg.")
        r.merge(avgpool_res(node, lanes), "pool.")
        info = {"lanes": lanes}
    elif isinstance(node, GlobalSumNode):
        r.merge(globalsum_res(node), "gsum.")
    depth = node_fifo_depth()
    if depth:
        r.merge(fifo_res(node.out.beat_bits, depth), "node_")
    return r, info


def node_fifo_depth() -> int:
    """Depth of the extra FIFO the RTL backend puts behind every node (0: none)."""
    try:
        from .backends import rtl
        return int(getattr(rtl, "NODE_FIFO_DEPTH", 0))
    except Exception:       # no RTL backend in this install
        return 0


def shell_resources(graph: Graph) -> Res:
    """AXI-stream adapters and the input FIFO around the node chain."""
    r = Res()
    r.merge(fifo_res(graph.input.beat_bits, 2), "in_")
    r.merge(fifo_res(graph.output.beat_bits + 1, 2), "axis_out_")
    r.add("axis_out_ctrl", 4, clog2(max(2, graph.output.h * graph.output.w)))
    return r


# ---------------------------------------------------------------------------------------
# Cycles and latency

def node_cycles(node, lanes: int | None = None) -> int:
    """Cycles per frame of one node at its folding (steady state, no stalls); `lanes`:
    channels per beat of an average pool (all when None)."""
    o = node.out
    if isinstance(node, ConvNode) and tap_parallel(node):
        # the window generator reads one pixel per cycle, the pair emits a window per
        # conv_pixel_cycles (alternately m and m + 1 cycles: rounded up per frame)
        return max(math.ceil(o.h * o.w * conv_pixel_cycles(node)), node.inp.h * node.inp.w)
    if isinstance(node, ConvNode):
        return o.h * o.w * (node.K // node.simd) * (o.c // node.pe)
    if isinstance(node, ScaleMacNode):
        return o.h * o.w * (node.inp.c // node.simd) * (o.c // node.pe)
    if isinstance(node, AvgPoolNode):
        cf = node.inp.c // (lanes or node.inp.c)
        return max(o.h * o.w * node.k * node.k * cf, node.inp.h * node.inp.w)
    if isinstance(node, MaxPoolNode):
        return max(o.h * o.w * node.k * node.k, node.inp.h * node.inp.w)
    return node.inp.h * node.inp.w


def avgpool_folds() -> bool:
    """Whether the RTL backend folds average pools over channels (rtl.avgpool_simd)."""
    try:
        from .backends import rtl
        return hasattr(rtl, "avgpool_simd")
    except Exception:
        return False


def avgpool_lanes(node: AvgPoolNode, budget: int) -> int:
    """Channels per beat the RTL backend gives an average pool for a cycle budget: the
    fewest (dividing C) that keep it within the budget (rtl.avgpool_simd), all without."""
    if not avgpool_folds():
        return node.inp.c
    from .backends import rtl
    return int(rtl.avgpool_simd(node, budget))


def pool_lanes(graph: Graph) -> dict:
    """Average pool -> lanes, with the RTL backend's budget: half the slowest other node."""
    others = [node_cycles(n) for n in graph.nodes if not isinstance(n, AvgPoolNode)]
    budget = max(others) // 2 if others else 0
    return {n.name: avgpool_lanes(n, budget) for n in graph.nodes if isinstance(n, AvgPoolNode)}


# pipeline depth (cycles from the last needed input beat to the unit's output beat)
PIPE = {k[5:]: v for k, v in C.items() if k.startswith("pipe_")}


def latency_cycles(graph: Graph, lanes: dict | None = None) -> int:
    """One frame on an idle pipeline: cycle of the last output beat minus the first input
    beat, from per-pixel arrival times (each unit starts an output pixel when it is free and
    the last input pixel of its window has arrived; one beat of work per cycle)."""
    s = graph.input
    arrive = np.arange(s.h * s.w, dtype=np.float64) + PIPE["fifo"]
    for node in graph.nodes:
        i, o = node.inp, node.out
        if isinstance(node, GlobalSumNode):
            arrive = np.array([arrive[-1] + 1 + PIPE["gsum"] + PIPE["fifo"]])
            continue
        if isinstance(node, ConvNode):
            k, st, p = node.k, node.stride, node.pad
            work = conv_pixel_cycles(node)
            d = PIPE["swg"] + PIPE["mvu"]
            if node.matrix == "int8" and getattr(node, "mult", "dsp") == "dsp2":
                d += 1                      # cf_mvu MULT 1: the group-sum stage B1
            if tap_parallel(node):
                # the window is collected (k*k beats) before it is replayed: that overlaps
                # the previous window's replay, except on the last (idle-pipeline) window
                sf, nf = node.K // node.simd, o.c // node.pe
                d += PIPE["widen"] + min((node.simd // i.c) // swg_taps(node) * sf, nf * sf)
        elif isinstance(node, ScaleMacNode):
            k, st, p = 1, 1, 0
            work = (i.c // node.simd) * (o.c // node.pe)
            d = PIPE["swg"] + PIPE["smac"]
        else:
            k, st, p = node.k, node.stride, node.pad
            cf = i.c // (lanes or {}).get(node.name, i.c) if isinstance(node, AvgPoolNode) else 1
            work = k * k * cf
            d = PIPE["swg"] + PIPE["pool"]
        oy = np.arange(o.h)[:, None] * st - p + k - 1
        ox = np.arange(o.w)[None, :] * st - p + k - 1
        need = (np.minimum(i.h - 1, oy) * i.w + np.minimum(i.w - 1, ox)).reshape(-1)
        ready = arrive[need] + d
        out = np.empty(len(need))
        t = -np.inf
        for j, rj in enumerate(ready):
            t = max(t, rj) + work
            out[j] = t
        arrive = out + PIPE["fifo"]
    return int(round(arrive[-1] + 1))


# ---------------------------------------------------------------------------------------
# The whole graph

def predict(graph: Graph, board: dict, mult: dict | None = None) -> dict:
    """Cycles, interval, latency and resources per node and in total, for the folding the
    nodes carry. mult: node name -> multiplier style (int8 layers), default 'dsp'."""
    mult = mult or {}
    clock = board.get("clock_mhz", 100)
    lanes = pool_lanes(graph)
    nodes, total = [], Res()
    for node in graph.nodes:
        dflt = getattr(node, "mult", "dsp") if isinstance(node, ConvNode) else "dsp"
        style = mult.get(node.name, {"style": dflt}) if isinstance(mult.get(node.name), dict) \
            else {"style": mult.get(node.name, dflt)}
        res, info = node_resources(node, style.get("style", "dsp"), style.get("dsp_cap"),
                                   lanes.get(node.name))
        total.LUT += res.LUT
        total.FF += res.FF
        total.BRAM36 += res.BRAM36
        total.DSP += res.DSP
        nodes.append({"name": node.name, "kind": node.kind, "pe": node.pe, "simd": node.simd,
                      "cycles": node_cycles(node, lanes.get(node.name)),
                      "resources": res.as_dict(detail=True),
                      **({"mult": info["mult"]} if "mult" in info else {}),
                      **({"lanes": info["lanes"]} if "lanes" in info else {}),
                      **{k: v for k, v in info.items() if k.endswith("_mem")}})
    shell = shell_resources(graph)
    for r in RESOURCES:
        setattr(total, r, getattr(total, r) + getattr(shell, r))
    interval = max(n["cycles"] for n in nodes)
    for n in nodes:
        n["share"] = n["cycles"] / interval
    avail = board.get("resources", {})
    tot = total.as_dict()
    return {"nodes": nodes, "interval_cycles": interval,
            "latency_cycles": latency_cycles(graph, lanes),
            "fps_at_clock": clock * 1e6 / interval, "clock_mhz": clock,
            "bottleneck": max(nodes, key=lambda n: n["cycles"])["name"],
            "resources": tot, "shell": shell.as_dict(),
            "utilization": {r: (tot[r] / avail[r]) if avail.get(r) else None for r in RESOURCES}}


LUTRAM_LUTS = {"RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8, "RAM16X1D": 2,
               "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM256X1D": 8, "RAM16X1S": 1,
               "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4, "RAM512X1S": 8,
               "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1}


def count_cells(cells: dict) -> dict:
    """Yosys xc7 cell counts -> LUT (logic + LUT RAM), FF, BRAM36, DSP (as generator/synth.py)."""
    import re
    lut_logic = sum(v for k, v in cells.items() if re.fullmatch(r"LUT[1-6]", k))
    lutram = sum(LUTRAM_LUTS[k] * v for k, v in cells.items() if k in LUTRAM_LUTS)
    ff = sum(v for k, v in cells.items() if k in ("FDRE", "FDSE", "FDCE", "FDPE", "LDCE", "LDPE"))
    return {"LUT": lut_logic + lutram, "LUT_logic": lut_logic, "LUTRAM": lutram, "FF": ff,
            "BRAM36": cells.get("RAMB36E1", 0) + cells.get("RAMB18E1", 0) / 2,
            "DSP": cells.get("DSP48E1", 0)}
