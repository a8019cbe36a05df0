"""Technology model of the AMD/Xilinx 7-series fabric (xc7): what a unit's logic costs in
cells, as Yosys `synth_xilinx -family xc7` maps it. The cost model (generator/hw/perf.py)
prices unit plans (generator/hw/units/) with it; the synthesis and timing flows count cells
with `count_cells` (one counter: generator/flows/synth.py, bench/, the calibration).

- `C`: every constant, with where it comes from;
- `map_memory`: block RAM / LUT RAM / logic choice of Yosys' memory_libmap, with its cells;
- multipliers: DSP48E1 slices per product, int8 products per DSP (dsp / dsp2 / lut);
- LUT formulas of multiplexers, popcounts and cf_widen's select.

UltraScale+ parts (zcu104, ultra96-v2, kv260) use this model too: the DSP48E2 and RAMB36E2
differ in detail (27x18 multipliers, cascaded block RAM), which the figures do not capture.
Their UltraRAM (URAM288, `map_uram`) is priced here as well; a board's `URAM` resource says
whether it has any (boards/*.json: zcu104 96, kv260 64, none elsewhere).
"""

from __future__ import annotations

import math
import re

from ..ir import clog2

FAMILY = "xc7"

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
    "xnor_lut_offset": 9.0,         # fit (Yosys 0.70 -abc9, bench/calibrate.py): narrow popcounts
                                    # cost less per bit (the chain's 8 and 16 bit ones)
    # measured: a popcount split into registered partial counts of 32 bits (cf_mvu PIPE 2)
    # costs less: NIN CF-16 pynq-z2, Yosys 0.23, PIPE 2 on five convs (4,928 bit pairs):
    # -2,211 LUT; NIN conv5 alone (SIMD 64 x PE 4): -110 LUT. 0.43 LUT per bit pair
    "xnor_split_saving_per_bit": 0.43,
    # --- accumulators, comparators, adders ----------------------------------------------
    "adder_lut_per_bit": 1.0,       # rule: one LUT (+ CARRY4) per bit of a 2-input adder
    "mux_adder_lut_per_bit": 2.0,   # fit: adder whose input is muxed to 0 (cf_avgpool)
    "gsum_lut_per_bit": 1.0,        # fit: cf_globalsum accumulate-or-load, one LUT3 + CARRY4
                                    # per bit under ABC9 (chain gsum: 528 bits, 534 LUT)
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
    # and 17 of A), G = DG (2..4, ConvNode.dsp_group, from the clock) products summed in a
    # DSP chain per pair, then per lane a balanced tree of cf_add carry-chain adders over the
    # SIMD/G group sums (17 + height bits each), the dot register db in fabric, and one more
    # pipeline stage (parameters). Yosys 0.70 ABC9, NIN conv1 (SIMD 15, PE 24): DG 3 +480
    # LUT, DG 2 +1,800 over DG 4, as the tree bits x 1.0 predict.
    "dsp2_tree_lut_per_bit": 1.0,   # measured: cf_mvu alone, Yosys 0.23 (no ABC9), dsp2 - dsp
                                    # LUT: PE 4 x SIMD 75 +1,360 (= 4 x 340 tree bits), PE 2 x
                                    # SIMD 9 +74 (2 x 37), PE 96 x SIMD 3 +0 (no tree);
                                    # DSP 150 / 9 / 144 = ceil(PE/2) * SIMD (docs/FOLDING.md)
    "int8_tree_lut_per_bit": 1.0,   # rule: adder tree of SIMD products, per bit per adder
    "int8_acc_lut_per_bit": 1.0,    # fit: int8 accumulator with its clear mux (0.70 -abc9: one
                                    # LUT + CARRY4 per bit; 0.23 needed two)
    # --- registers / control ----------------------------------------------------------
    "mvu_ctrl_lut": 15,             # fit: cf_mvu counters, credits, valid pipeline (0.70 -abc9)
    "mvu_ctrl_ff": 16,
    "swg_ctrl_lut": 68,             # fit: cf_swg window counters, address arithmetic (0.70 -abc9)
    "swg_ctrl_ff": 57,             # fit; +22 measured when need/oldest became registers (cf_swg, NIN: 4,996 -> 5,241 FF over 11 units)
    "swg_ctrl_lut_per_addr_bit": 2.0,  # fit: grows with the buffer / frame address width
    "swg_mux_scale": 1.4,           # fit: cf_swg chunk multiplexer vs mux_luts()
    "swg_mux_scale_bram": 1.95,     # fit: the same after a block RAM (NIN avgpool19, 64 x 3,264
                                    # bits, 32 chunks: select about 1,700 LUT)
    "swg_pad_lut": 12,              # fit: padding control (the pad value is the read register's
                                    # set/reset: no LUT per pixel bit under ABC9)
    "swg_fifo_depth": 2,            # rule: cf_swg output FIFO (localparam FD)
    "pool_ctrl_lut": 10,
    "fifo_ctrl_lut": 8,             # fit: cf_fifo pointers and count (depth 2)
    "fifo_slot_lut": 2,             # cf_fifo DEPTH 1: full flag next state and ready (estimate)
    "fifo_ctrl_ff": 5,
    "smac_ctrl_lut": 30,            # fit: cf_scalemac counters (0.70 -abc9)
    "smac_tree_lut_per_bit": 0.0,   # fit: a group's products are summed down the DSP cascade
    "smac_acc_lut_per_bit": 0.5,    # fit: the group accumulator and output clamp, per bit
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
}


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
            # (and their registers) are merged, constants vanish, unused addresses are don't
            # cares: a shallow ROM has at most 2^depth - 2 distinct non-constant bits
            # (measured: 6 x 288 random int8 bits, 61 FF)
            distinct = width if depth >= 12 else min(width, max(0, 2 ** depth - 2))
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
# UltraRAM (UltraScale+ URAM288, UG573): 4096 words of 72 bits per block, one geometry (no
# narrower aspect ratios), no initial contents in the bitstream (a memory placed there is
# written at run time), a built-in cascade for depth. Block RAM and the synthesis tool's
# memory inference never choose it here: the folding does, per weight memory
# (generator/hw/fold.py, ConvNode / ScaleMacNode `weight_mem`).
URAM_DEPTH = 4096                   # rule: URAM288 words
URAM_WIDTH = 72                     # rule: URAM288 data bits (one width)
URAM_BITS = URAM_DEPTH * URAM_WIDTH  # 288 kbit


def map_uram(depth: int, width: int) -> dict:
    """A memory of `depth` words of `width` bits in UltraRAM: ceil(width / 72) columns of
    ceil(depth / 4096) blocks cascaded for depth (the cascade's read multiplexers are in the
    blocks, no fabric LUTs; the output register is the block's own). Same keys as
    map_memory, plus URAM (blocks) and cascade (blocks per column)."""
    depth, width = max(1, int(depth)), max(1, int(width))
    cols = -(-width // URAM_WIDTH)
    rows = -(-depth // URAM_DEPTH)
    return {"style": "URAM288", "LUT": 0.0, "FF": 0, "BRAM36": 0.0, "URAM": cols * rows,
            "instances": cols * rows, "cascade": rows}


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


def mux_luts(n: int) -> float:
    """LUT6 per output bit of an n:1 multiplexer (MUXF7/F8 are free)."""
    if n <= 1:
        return 0.0
    if n <= 4:
        return 1.0
    if n <= 16:
        return n / 4.0
    return n / 4.0 + n / 64.0


def widen_mux_luts(sf: int) -> float:
    """LUTs per output bit of cf_widen's SF:1 chunk select (Yosys builds LUT chains)."""
    if sf <= 1:
        return 0.0
    if sf <= 4:
        return C["widen_mux_lut_small"]
    return (sf - 1) * C["widen_mux_lut_per_sel"]


def popcount_luts(n: int) -> float:
    """LUTs of XNOR + popcount over n bit pairs (one PE)."""
    return max(0.5 * n, C["xnor_lut_nlogn"] * n * math.log2(max(n, 2))
               + C["xnor_lut_per_bit"] * n - C["xnor_lut_offset"])


#: LUTs per LUT-RAM / shift-register cell (SLICEM LUTs it occupies)
LUTRAM_LUTS = {
    "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8,
    "RAM16X1D": 2, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM256X1D": 8,
    "RAM16X1S": 1, "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4,
    "RAM512X1S": 8, "RAM16X2S": 2, "RAM32X2S": 2, "RAM64X2S": 2, "RAM16X4S": 4,
    "RAM32X4S": 4, "RAM16X8S": 8, "RAM32X8S": 8,
    "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1,
}
FF_CELLS = ("FDRE", "FDSE", "FDCE", "FDPE", "LDCE", "LDPE")


def count_cells(cells: dict) -> dict:
    """Yosys cell counts (xc7, and the UltraScale E2 primitives) -> LUT (logic + LUT RAM),
    FF, BRAM36 (RAMB18 = 1/2), DSP, carry and wide-mux cells. The one counter of the
    synthesis flow (generator/flows/synth.py), the benchmarks and the calibration."""
    lut_logic = sum(n for c, n in cells.items() if re.fullmatch(r"LUT[1-6]", c))
    lutram = sum(LUTRAM_LUTS[c] * n for c, n in cells.items() if c in LUTRAM_LUTS)
    ff = sum(cells.get(c, 0) for c in FF_CELLS)
    b36 = cells.get("RAMB36E1", 0) + cells.get("RAMB36E2", 0)
    b18 = cells.get("RAMB18E1", 0) + cells.get("RAMB18E2", 0)
    return {"LUT": lut_logic + lutram, "LUT_logic": lut_logic, "LUTRAM": lutram, "FF": ff,
            "BRAM36": b36 + b18 / 2, "RAMB36": b36, "RAMB18": b18,
            "DSP": cells.get("DSP48E1", 0) + cells.get("DSP48E2", 0),
            "CARRY4": cells.get("CARRY4", 0), "MUXF7": cells.get("MUXF7", 0),
            "MUXF8": cells.get("MUXF8", 0)}
