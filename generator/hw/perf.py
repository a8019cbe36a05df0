"""Analytic performance and resource model: prices the unit plans (generator/hw/units/) with a
technology model (generator/hw/tech/), before any simulation.

Cycles and pipeline depths are the plans' (one owner per fact); this module adds the
latency of one frame on an idle pipeline, from a pixel-level timing model: every output
pixel starts when its unit is free and the last input pixel of its window has arrived.

Resources: every node is the units its plan names (docs/ARCHITECTURE.md):
    conv      window generator -> [widener ->] matrix-vector-threshold unit -> FIFO
    maxpool   window generator -> OR/AND (bits) or max (ints) window -> FIFO,  avgpool  window -> sum + threshold
    scalemac  window generator (k=1) -> scale MAC -> FIFO,  globalsum  sum -> FIFO
and each unit is costed from first principles: XNOR+popcount LUTs per SIMD bit and PE,
adders and comparators per bit, registers per bit, multipliers as DSP48E1 slices (one or two
int8 products each) or LUT multipliers, and every memory (weights, thresholds, window line
buffers, FIFOs) through the block RAM / LUT RAM / logic choice Yosys' memory_libmap makes
(generator/hw/tech/xc7.py, with the constants and where each comes from; calibrated against
Yosys `synth_xilinx -family xc7` on the real units: bench/yosys_units.py,
bench/calibrate.py, docs/FOLDING.md). A matrix unit's or scale MAC's weight memory goes to
UltraRAM instead when its node says so (`weight_mem` "uram", a choice of the folding).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from . import dram as dram_mod
from . import units
from .boards import OPTIONAL_RESOURCES, as_board
from .ir import Graph, clog2
from .tech import for_family
from .tech import xc7 as DEFAULT_TECH
from .pipeline import PCH as DEFAULT_PCH
from .units.common import NODE_FIFO_DEPTH, PIPE, SWG_FIFO_DEPTH, Plan

#: the fabric resources every board has (and every budget holds)
RESOURCES = ("LUT", "FF", "BRAM36", "DSP")
#: with UltraRAM (URAM288 blocks), which only some boards have (boards/*.json `URAM`)
ALL_RESOURCES = RESOURCES + OPTIONAL_RESOURCES
#: where a weight memory lives (ConvNode / ScaleMacNode `weight_mem`, set by the folding):
#: 'auto' block RAM, LUT RAM or logic as the synthesis tool maps it (tech.map_memory);
#: 'uram' UltraRAM (tech.map_uram), which needs the run-time weight port (not built yet)
WEIGHT_MEMS = ("auto", "uram")
#: int8 multiplier styles the cost model prices (the backends build units.conv.MULT_STYLES)
MULT_STYLES = DEFAULT_TECH.MULT_STYLES


@dataclass
class Res:
    LUT: float = 0.0
    FF: float = 0.0
    BRAM36: float = 0.0
    DSP: float = 0.0
    URAM: float = 0.0
    detail: dict = field(default_factory=dict)   # part -> LUT/FF/BRAM36/DSP/URAM dict

    def add(self, part: str, lut=0.0, ff=0.0, bram=0.0, dsp=0.0, uram=0.0) -> "Res":
        self.LUT += lut
        self.FF += ff
        self.BRAM36 += bram
        self.DSP += dsp
        self.URAM += uram
        d = self.detail.setdefault(part, {r: 0.0 for r in ALL_RESOURCES})
        d["LUT"] += lut
        d["FF"] += ff
        d["BRAM36"] += bram
        d["DSP"] += dsp
        d["URAM"] += uram
        return self

    def merge(self, other: "Res", prefix: str = "") -> "Res":
        for part, d in other.detail.items():
            self.add(prefix + part, d["LUT"], d["FF"], d["BRAM36"], d["DSP"], d["URAM"])
        return self

    def as_dict(self, detail: bool = False) -> dict:
        d = {"LUT": int(round(self.LUT)), "FF": int(round(self.FF)),
             "BRAM36": round(self.BRAM36 * 2) / 2, "DSP": int(round(self.DSP)),
             "URAM": int(round(self.URAM))}
        if detail:
            d["parts"] = {k: {r: round(v[r], 1) for r in ALL_RESOURCES}
                          for k, v in self.detail.items()}
        return d


def _mem(t, m, sync_read=None, kind: str = "auto"):
    """A units.Memory mapped by the technology model; kind 'uram': in UltraRAM (weights)."""
    if kind == "uram":
        return t.map_uram(m.depth, m.width)
    if kind != "auto":
        raise ValueError(f"weight memory kind {kind!r:.20} is not one of {', '.join(WEIGHT_MEMS)}")
    return t.map_memory(m.depth, m.width, rom=m.rom,
                        sync_read=m.sync_read if sync_read is None else sync_read,
                        style="block" if m.block else "auto")


# ---------------------------------------------------------------------------------------
# Units

def fifo_res(width: int, depth: int, t=DEFAULT_TECH) -> Res:
    C = t.C
    r = Res()
    if depth == 1:
        # cf_fifo DEPTH 1: a register slot and a full flag
        r.add("fifo_mem", 0, width)
        r.add("fifo_ctrl", C["fifo_slot_lut"], 1)
        return r
    m = t.map_memory(depth, width, rom=False, sync_read=False)
    r.add("fifo_mem", m["LUT"], m["FF"], m["BRAM36"])
    aw = max(1, clog2(depth))
    r.add("fifo_ctrl", C["fifo_ctrl_lut"] + 2 * max(0, aw - 1), 2 * aw + clog2(depth + 1))
    return r


def swg_res(win: units.Window, t=DEFAULT_TECH) -> Res:
    """Window generator: line buffer of whole pixels (one copy per row tap), window counters,
    chunk mux, output FIFO."""
    C = t.C
    r = Res()
    if win.wire:                # the backends connect the core to the stream directly
        return r
    pw, taps, depth = win.pixel_width, win.row_taps, win.depth
    m = _mem(t, win.line_buffer)
    r.add("swg_buffer", taps * m["LUT"], taps * m["FF"], taps * m["BRAM36"])
    cf, ow = win.chunks, win.out_width
    # chunk select: a CF:1 multiplexer per output bit (more of them behind a block RAM's
    # read port, where Yosys cannot fold the select into the LUT RAM read); padding costs
    # a few LUTs of control, the pad pixel itself is the read register's set/reset
    scale = C["swg_mux_scale_bram"] if m["style"].startswith("RAMB") else C["swg_mux_scale"]
    sel = ow * t.mux_luts(cf) * scale if cf > 1 else 0.0
    if win.pad:
        sel += C["swg_pad_lut"]
    r.add("swg_select", sel, 0)
    qw = clog2(win.h * win.w + depth + win.w * win.k + 2) + 2
    xw = clog2(win.h + win.w + 2 * win.pad + win.k + 2) + 2
    ctrl_ff = (C["swg_ctrl_ff"] + 2 * qw + 2 * xw + clog2(depth) * 2 + clog2(win.nf) + clog2(cf)
               - 40)
    r.add("swg_ctrl", C["swg_ctrl_lut"] + C["swg_ctrl_lut_per_addr_bit"] * (qw - 10),
          max(ctrl_ff, 20))
    return r.merge(fifo_res(ow, SWG_FIFO_DEPTH, t), "swg_")


def widen_res(wid: units.Widen, t=DEFAULT_TECH) -> Res:
    """Widener: collect and hold registers of one window (R*SF beats of IW bits), the SF:1
    select of the hold's chunks, counters."""
    C = t.C
    res = Res()
    bits = wid.ctrl_bits
    res.add("widen_regs", 0, 2 * wid.in_beats * wid.iw)
    res.add("widen_select", wid.r * wid.iw * t.widen_mux_luts(wid.sf), 0)
    res.add("widen_ctrl", C["widen_ctrl_lut"] + C["widen_ctrl_lut_per_bit"] * bits, bits + 1)
    return res


def dsp2_tree_bits(simd: int, group: int) -> int:
    """Adder bits of one dsp2 lane tree (rtl/cf_mvu.v g_lane): a balanced heap over the
    ceil(SIMD/G) 17-bit group sums (G = cf_mvu DG), each cf_add 17 + its height bits wide."""
    ng = -(-simd // group)
    L = clog2(ng)
    nl = 1 << L
    bits = 0
    for n in range(1, nl):
        h = L - (n.bit_length() - 1)
        fr = ((2 * n + 1) << (h - 1)) - nl
        if (n << h) - nl < ng and fr < ng:
            bits += 17 + h
    return bits


def mvu_res(p: Plan, dsp_cap: int | None = None, t=DEFAULT_TECH,
            weight_mem: str = "auto") -> tuple[Res, dict]:
    """Matrix unit: weight and parameter memories (the weights in UltraRAM when weight_mem
    is 'uram'), PE x SIMD dot products, accumulators, activation, output assembly and FIFO."""
    C = t.C
    m_: units.conv.Matrix = p.core
    r = Res()
    pe, simd, xnor = m_.pe, m_.simd, m_.xnor
    sf, nf, co = m_.sf, m_.nf, m_.co
    cw, dw, tw, ob = m_.cw, m_.dw, m_.tw, m_.ob
    mems = {m.role: m for m in p.memories}
    mw = _mem(t, mems["weights"], kind=weight_mem)
    info = {"weights_mem": mw["style"]}
    on_dsp = 0
    if not xnor:
        mult = t.int8_products(pe * simd, m_.mult, dsp_cap, pe=pe)
        info["mult"] = mult
        on_dsp = mult["dsp_products"]
    # the weight register (wa) is the ROM's read register (not absorbed by the DSPs)
    r.add("weights", mw["LUT"], mw["FF"], mw["BRAM36"], 0.0, mw.get("URAM", 0))
    const_params = nf == 1          # one parameter word: Yosys folds it into constants
    if const_params:
        info["params_mem"] = "constant"
    else:
        mp = _mem(t, mems["params"])
        info["params_mem"] = mp["style"]
        # pa (the ROM's read register), pb, pc_q: as many as the ROM has distinct bits
        bits = mp.get("distinct", mems["params"].width)
        r.add("params", mp["LUT"], (mp["FF"] if mp["style"] == "logic" else 0) + 2 * bits,
              mp["BRAM36"])
    if xnor:
        split = pe * simd * C["xnor_split_saving_per_bit"] if m_.partial_counts else 0.0
        r.add("xnor_popcount", pe * t.popcount_luts(simd) - split, pe * dw)
    else:
        # products on DSPs: the SIMD sum runs down the DSP cascade (post-adders) and the
        # DSP output register holds db; products in LUTs need an adder tree and db
        frac_lut = 1.0 - on_dsp / (pe * simd)
        tree = pe * max(0, simd - 1) * dw * C["int8_tree_lut_per_bit"] * frac_lut
        if m_.mult == "dsp2":
            # lane trees over the group sums (the DSP P registers hold the group sums), db
            # in fabric; fit: the stage's parameter copy costs no more FFs in Yosys
            tree += pe * dsp2_tree_bits(simd, m_.dg) * C["dsp2_tree_lut_per_bit"]
            ff = pe * dw + 4
        else:
            ff = pe * dw * frac_lut
        r.add("int8_mult", mult["LUT"] + tree, ff, 0, mult["dsp"])
    acc_lut = C["adder_lut_per_bit"] if xnor else C["int8_acc_lut_per_bit"]
    r.add("accumulate", pe * cw * acc_lut, 2 * pe * cw)
    cmp = C["cmp_const_lut_per_bit"] if const_params else C["cmp_lut_per_bit"]
    if m_.act == "threshold":
        r.add("threshold", pe * (max(cw, tw) + 1) * cmp, 0)
    else:
        r.add("relu_offset", pe * ob * C["relu_lut_per_bit"] + pe * (cw + 2) * cmp * 2, 0)
    r.add("input_reg", 0, simd * m_.in_bits)
    if m_.pipe >= 1:
        # stage R: the beat once more (pixels, weight word, parameters, flags); measured,
        # Yosys 0.23, NIN conv5 (SIMD 64, PE 4, weights in block RAM): +360 FF, exactly this
        r.add("pipe_read", 0, simd * m_.in_bits + pe * simd * m_.wbits + pe * (tw + 1) + 4)
    if m_.partial_counts:
        # stage P: registered partial popcounts of PCH bits in place of the dot register's
        # share (measured on the same unit: PIPE 2 - PIPE 1 = -29 FF, -110 LUT; priced as
        # the register difference, LUTs unchanged)
        qw = clog2(DEFAULT_PCH + 1)
        r.add("pipe_partial", 0, pe * m_.partial_counts * qw + 4 - pe * dw)
    r.add("assembly", 0, (co - pe) * ob if nf > 1 else 0)
    r.add("mvu_ctrl", C["mvu_ctrl_lut"], C["mvu_ctrl_ff"] + 2 * clog2(max(2, nf * sf)))
    r.merge(fifo_res(co * ob, m_.fd, t), "out_")
    return r, info


def scalemac_res(p: Plan, dsp_cap: int | None = None, t=DEFAULT_TECH,
                 weight_mem: str = "auto") -> tuple[Res, dict]:
    C = t.C
    c: units.scalemac.ScaleMac = p.core
    r = Res()
    pe, simd, sf, nf = c.pe, c.simd, c.sf, c.nf
    gs, gpc, cpg = c.gs, c.gpc, c.cpg
    sjw, gpw, mw_, zi = c.sjw, c.gpw, c.mw, c.zi
    mems = {m.role: m for m in p.memories}
    m_w = _mem(t, mems["weights"], kind=weight_mem)
    m_s, m_b = (_mem(t, mems[k]) for k in ("scales", "bias"))
    r.add("weights", m_w["LUT"], m_w["FF"], m_w["BRAM36"], 0.0, m_w.get("URAM", 0))
    r.add("scales", m_s["LUT"], m_s["FF"], m_s["BRAM36"])
    r.add("bias", m_b["LUT"], m_b["FF"], m_b["BRAM36"])
    n_s = m_s.get("distinct", gpc * c.scw)
    n_b = m_b.get("distinct", pe * c.bw)
    # integer MACs inside a group: (IB+1) x 8 signed products
    d_int = t.dsp_per_mult(c.ib + (0 if c.isigned else 1), 8)
    tree = C["smac_tree_lut_per_bit"] if d_int else C["int8_tree_lut_per_bit"]
    r.add("group_macs", pe * gpc * max(0, gs - 1) * sjw * tree, 0, 0, pe * simd * d_int)
    # the per-group scale multiply: C/n of them per output instead of C
    d_sc = t.dsp_per_mult(sjw if cpg == 1 else gpw, c.scw + 1)
    n_sc = pe * (gpc if cpg == 1 else 1)
    r.add("scale_mult", pe * (gpc - 1) * mw_ if cpg == 1 else pe * gpw, 0, 0, n_sc * d_sc)
    r.add("accumulate", pe * (zi + c.ob) * C["smac_acc_lut_per_bit"], 0)
    # xa, sa/scb, ba/bb/bc, zacc, asmb; the DSPs absorb the weight register (AREG), the
    # sub-sum register sb and the scaled register mc (PREG)
    regs = simd * c.ib + n_s + n_b * 2 + pe * zi \
        + (c.co - pe) * c.ob * (nf > 1) + (pe * gpw if cpg > 1 else 0) \
        + (0 if d_int else pe * gpc * sjw) + (0 if d_sc else pe * mw_)
    if m_w["style"] == "logic" and d_int:
        r.detail["weights"]["FF"] -= m_w["FF"]
        r.FF -= m_w["FF"]
    r.add("registers", 0, regs)
    r.add("smac_ctrl", C["smac_ctrl_lut"], C["smac_ctrl_ff"])
    if c.pipe:
        # stage R: the weight register goes into the DSPs' B registers; the scales, bias
        # and flags are delayed in SRL16Es (measured, Yosys 0.70, NIN conv9: +36 SRL16E)
        r.add("pipe_read", n_s + n_b + 4, -1)
    r.merge(fifo_res(c.co * c.ob, c.fd, t), "out_")
    return r, {"weights_mem": m_w["style"], "scale_mults": n_sc, "scale_mult_dsp": d_sc}


def maxpool_res(p: Plan, t=DEFAULT_TECH) -> Res:
    c = p.core
    if c.b == 1:
        r = Res().add("or_window", c.c * 1.0 + t.C["pool_ctrl_lut"], c.c + clog2(c.kk) + 1)
    else:
        # a B-bit compare and select per channel: priced as the adder-and-mux bit of the
        # average pool (same carry chain plus a mux), not calibrated on its own
        r = Res().add("max_window", c.c * c.b * t.C["mux_adder_lut_per_bit"] + t.C["pool_ctrl_lut"],
                      c.c * c.b + clog2(c.kk) + 1)
    return r.merge(fifo_res(c.c * c.b, c.fd, t), "out_")


def avgpool_res(p: Plan, t=DEFAULT_TECH) -> Res:
    """SIMD lanes of adders and comparators; with CF = C/SIMD > 1 the partial sums of all
    channels sit in a CF-entry register file (LUT RAM) and the thresholds in a CF-word ROM."""
    C = t.C
    c: units.avgpool.AvgPool = p.core
    sw, cf = c.swi, c.cf
    r = Res()
    # one tap per pixel: the sum is the value (the tap counter is constant, Yosys drops it)
    adder = c.simd * sw * C["mux_adder_lut_per_bit"] if c.kk > 1 else 0.0
    r.add("window_sum", adder + C["pool_ctrl_lut"],
          (c.c * sw if cf == 1 and c.kk > 1 else 0) + clog2(c.kk) + clog2(cf) + 2)
    r.add("threshold", c.simd * (sw + 1) * C["avg_cmp_lut_per_bit"], 0)
    for m in p.memories:
        if m.rom and m.depth == 1:
            continue    # one threshold word: constants folded into the comparators
        mm = _mem(t, m)
        r.add(m.role, mm["LUT"], mm["FF"], mm["BRAM36"])
    if cf > 1:
        r.add("assembly", 0, c.c)
    return r.merge(fifo_res(c.c, c.fd, t), "out_")


def globalsum_res(p: Plan, t=DEFAULT_TECH) -> Res:
    c = p.core
    r = Res().add("sum", c.c * c.ob * t.C["gsum_lut_per_bit"] + t.C["pool_ctrl_lut"],
                  c.c * c.ob + clog2(c.n) + 1)
    return r.merge(fifo_res(c.c * c.ob, c.fd, t), "out_")


def resadd_res(p: Plan, t=DEFAULT_TECH) -> Res:
    """SIMD lanes of two multiplies and a three-input sum, the per-channel constants in a
    C/SIMD-word ROM, the shortcut FIFO (skip_depth whole pixels). Not calibrated against
    Yosys on its own: the multiplier and adder figures are the scale MAC's."""
    C = t.C
    c: units.resadd.ResAdd = p.core
    r = Res()
    d_a = t.dsp_per_mult(c.mw, c.ab + (0 if c.asigned else 1))
    d_b = t.dsp_per_mult(c.mw, c.bb + (0 if c.bsigned else 1))
    r.add("products", 0, 0, 0, c.simd * (d_a + d_b))
    r.add("sum", c.simd * c.zw * 2 * C["smac_acc_lut_per_bit"], c.simd * c.zw)
    mems = {m.role: m for m in p.memories}
    pm = _mem(t, mems["params"])
    r.add("params", pm["LUT"], pm["FF"], pm["BRAM36"])
    # the output pixel assembled over C/SIMD cycles, and the rest of the a pixel held
    # (cf_resadd takes the a beat with the first chunk)
    r.add("assembly", c.c * c.ob * (c.cf > 1) * 0.5,
          (c.c * c.ob + (c.c - c.simd) * c.ab) if c.cf > 1 else 0)
    r.add("ctrl", C["pool_ctrl_lut"], clog2(c.cf) + 2)
    r.merge(fifo_res(mems["skip_fifo"].width, c.skip, t), "skip_")
    return r.merge(fifo_res(c.c * c.ob, c.fd, t), "out_")


def dram_res(dp, t=DEFAULT_TECH) -> Res:
    """A DRAM-streamed fully-connected layer (generator/hw/dram.py DramPlan): cf_axi_wread
    (AXI control, the raw beat FIFO, the unpacker, the word FIFO) and cf_mvu_dram (batch and
    output buffers, the held weight word, PE popcounts over SIMD bits, the B accumulator
    sets, the activation, the output register). Its memories go through the same
    memory mapping as every unit's; the logic uses cf_mvu's constants (popcount,
    accumulator, comparator per bit) and is not calibrated on this unit separately."""
    C = t.C
    r = Res()
    pe, simd, B = dp.pe, dp.simd, dp.batch
    pcw, cw, ob, nf = clog2(simd + 1), dp.cw, dp.ob, dp.nf
    # cf_axi_wread
    dw, ww = dp.port_bits, dp.word_bits
    r.add("axi_ctrl", 2 * C["mvu_ctrl_lut"] + 2 * clog2(dp.beats + 1),
          32 * 2 + 8 + 2 * clog2(dp.beats + 1) + 2 * clog2(dram_mod.RAW_FIFO + 1) + 4)
    r.merge(fifo_res(dw, dram_mod.RAW_FIFO, t), "raw_")
    if ww >= dw:
        r.add("unpack", 0, (dp.beats_per_word - 1) * dw + clog2(dp.beats_per_word))
    else:
        r.add("unpack", ww * t.mux_luts(dp.words_per_beat), clog2(dp.words_per_beat) +
              clog2(dp.beats))
    r.merge(fifo_res(ww, dram_mod.WORD_FIFO, t), "word_")
    # cf_mvu_dram: buffers (simple dual port, registered read), the parameter ROM
    for role, depth, width in (("batch_buffer", dp.ibuf_depth, simd),
                               ("out_buffer", dp.obuf_depth, pe * ob)):
        m = t.map_memory(depth, width, rom=False, sync_read=True)
        r.add(role, m["LUT"], m["FF"], m["BRAM36"])
    if nf == 1:
        r.add("params", 0, 0)           # one word: constants
    else:
        mp = t.map_memory(nf, pe * (dp.tw + 1), rom=True)
        bits = mp.get("distinct", pe * (dp.tw + 1))
        r.add("params", mp["LUT"], (mp["FF"] if mp["style"] == "logic" else 0) + bits,
              mp["BRAM36"])
    if dp.ci > simd:                    # a pixel written as CI / SIMD chunks
        r.add("input_split", dp.ci * 0.0 + simd, dp.ci - simd + clog2(dp.ci // simd) + 1)
    r.add("weight_reg", 0, pe * simd)
    r.add("xnor_popcount", pe * t.popcount_luts(simd), pe * pcw)
    if dp.pipe:
        r.add("pipe_read", 0, simd + pe * simd + 4)
    r.add("accumulate", pe * cw * C["adder_lut_per_bit"], pe * cw)
    # the B accumulator sets: a shift register of B entries (SRLC32E per bit beyond two)
    if B <= 2:
        r.add("acc_sets", 0, B * pe * cw)
    else:
        r.add("acc_sets", pe * cw * -(-B // 32), pe * cw)
    cmp = C["cmp_lut_per_bit"]
    if dp.act == "threshold":
        r.add("threshold", pe * (max(cw, dp.tw) + 1) * cmp, 0)
    else:
        r.add("relu_offset", pe * ob * C["relu_lut_per_bit"] + pe * (cw + 2) * cmp * 2, 0)
    r.add("output_reg", 0, dp.co * ob)  # the output beat, assembled in place
    ctrl_bits = (2 * clog2(dp.ibuf_depth) + 2 * clog2(dp.obuf_depth) * 3 + 3 * clog2(B)
                 + clog2(dp.sf) + 3 * clog2(nf) + 12)
    r.add("mvu_ctrl", 3 * C["mvu_ctrl_lut"] + ctrl_bits, C["mvu_ctrl_ff"] + ctrl_bits)
    return r


def price(p: Plan, dsp_cap: int | None = None, t=DEFAULT_TECH,
          weight_mem: str = "auto") -> tuple[Res, dict]:
    """Resources of one unit plan; info: memory styles, the int8 multipliers, pool lanes.
    weight_mem: where a matrix unit's or scale MAC's weights live (WEIGHT_MEMS; the node's
    `weight_mem`, which the plan does not carry)."""
    r, info = Res(), {}
    if p.window is not None:
        r.merge(swg_res(p.window, t), "swg.")
    if p.widen is not None:
        r.merge(widen_res(p.widen, t), "widen.")
    if p.kind == "conv":
        m, info = mvu_res(p, dsp_cap, t, weight_mem)
        r.merge(m, "mvu.")
    elif p.kind == "scalemac":
        m, info = scalemac_res(p, dsp_cap, t, weight_mem)
        r.merge(m, "smac.")
    elif p.kind == "maxpool":
        r.merge(maxpool_res(p, t), "pool.")
    elif p.kind == "avgpool":
        r.merge(avgpool_res(p, t), "pool.")
        info = {"lanes": p.lanes}
    elif p.kind == "globalsum":
        r.merge(globalsum_res(p, t), "gsum.")
    elif p.kind == "resadd":
        r.merge(resadd_res(p, t), "add.")
        info = {"lanes": p.lanes}
    else:
        raise ValueError(f"the cost model has no price for unit kind {p.kind!r}")
    if NODE_FIFO_DEPTH:
        r.merge(fifo_res(p.out_width, NODE_FIFO_DEPTH, t), "node_")
    return r, info


def node_resources(node, mult: str | None = None, dsp_cap: int | None = None,
                   t=DEFAULT_TECH) -> tuple[Res, dict]:
    """Resources of one node at its folding (and weight memory); `mult` prices another int8
    multiplier style."""
    if mult is not None and node.kind == "conv" and node.matrix == "int8":
        node = replace(node, mult=mult)
    return price(units.plan(node), dsp_cap, t, weight_mem_of(node))


def weight_mem_of(node) -> str:
    """Where the node's weights live ('auto' for kinds without a weight memory)."""
    return getattr(node, "weight_mem", "auto") or "auto"


def shell_resources(graph: Graph, t=DEFAULT_TECH) -> Res:
    """AXI-stream adapters and the input FIFO around the node chain."""
    r = Res()
    r.merge(fifo_res(graph.input.beat_bits, 2, t), "in_")
    r.merge(fifo_res(graph.output.beat_bits + 1, 2, t), "axis_out_")
    r.add("axis_out_ctrl", 4, clog2(max(2, graph.output.h * graph.output.w)))
    for src, readers in graph.consumers().items():
        if len(readers) > 1:        # cf_fork: two shared entries, a 2:1 choice per output
            w = graph.stream(src).beat_bits     # bit (two per LUT6_2), counts and pointers
            r.add(f"fork_{src or 'input'}", w + 4, 2 * w + 7)
    return r


# ---------------------------------------------------------------------------------------
# Latency

def _windowed(node, p, arrive: np.ndarray, frames: int) -> np.ndarray:
    """Per output pixel (all frames), when the last input pixel of its window arrived."""
    i, o = node.inp, node.out
    k, st, pad = p.window.k, p.window.stride, p.window.pad
    oy = np.arange(o.h)[:, None] * st - pad + k - 1
    ox = np.arange(o.w)[None, :] * st - pad + k - 1
    need = (np.minimum(i.h - 1, oy) * i.w + np.minimum(i.w - 1, ox)).reshape(-1)
    need = (need[None, :] + (np.arange(frames) * i.h * i.w)[:, None]).reshape(-1)
    return arrive[need]


def _serve(ready: np.ndarray, per_pixel: float) -> np.ndarray:
    """Finish times of pixels served in order, each taking per_pixel cycles once ready."""
    out = np.empty(len(ready))
    tt = -np.inf
    for j, rj in enumerate(ready):
        tt = max(tt, rj) + per_pixel
        out[j] = tt
    return out


def arrivals(graph: Graph, plans: list | None = None, frames: int = 1,
             interval: float = 0.0, pace: float = 1.0) -> tuple[dict, dict]:
    """The pixel-level timing model on the graph (a DAG): input pixels of frame f arrive
    from f * interval on, one every `pace` cycles; every unit starts an output pixel when it is free
    and the last input pixel of its window (a residual add: both pixels) has arrived, then
    spends the plan's pixel cycles; a forked stream passes cf_fork's register.
    Returns ({node name: output arrival times}, {resadd name: times it takes each pixel})."""
    plans = plans or units.plan_graph(graph)
    s = graph.input
    px = s.h * s.w
    arrive = {"": (np.arange(frames)[:, None] * interval + np.arange(px)[None, :] * pace)
              .reshape(-1) + PIPE["fifo"]}
    readers = graph.consumers()
    taken = {}
    for i, (node, p) in enumerate(zip(graph.nodes, plans)):
        ins = [arrive[src] + (PIPE["fork"] if len(readers[src]) > 1 else 0)
               for src in graph.sources(i)]
        if node.kind == "resadd":
            ready = np.maximum(ins[0], ins[1] + PIPE["fifo"]) + p.pipe
            out = _serve(ready, p.pixel_cycles)
            taken[node.name] = out - p.pixel_cycles
        elif p.window is None:          # a global reduction: one output after each frame
            last = ins[0].reshape(frames, -1)[:, -1]
            out = last + p.pipe
        else:
            out = _serve(_windowed(node, p, ins[0], frames) + p.pipe, p.pixel_cycles)
        arrive[node.name] = out + PIPE["fifo"]
    return arrive, taken


def dram_plans(graph: Graph, plans: list, board) -> list:
    """The plans with every DRAM-streamed layer's timing in place of its on-chip one: its
    interval per frame, and as the work of its one output pixel the whole batch's cycles
    (the latency model then gives the last frame of a batch whose frames arrived back to
    back; the first waits for the B - 1 after it), its pipeline cf_mvu_dram's stages
    (issue, [R,] popcount, accumulate, activation, read-out: 6 + PIPE) and the read-out
    of NF words."""
    if not any(weight_mem_of(n) == "dram" for n in graph.nodes):
        return plans
    b = as_board(board)
    out = []
    for node, p in zip(graph.nodes, plans):
        if weight_mem_of(node) == "dram":
            dp = dram_mod.plan(node, b)
            bpc = b.dram_bytes_per_cycle
            p = replace(p, cycles=dp.cycles(bpc), pixel_cycles=dp.batch_cycles(bpc),
                        pipe=6 + dp.pipe + dp.nf, widen=None)
        out.append(p)
    return out


def latency_cycles(graph: Graph, plans: list | None = None) -> int:
    """One frame on an idle pipeline: cycle of the last output beat minus the first input
    beat (arrivals: per-pixel times along the graph)."""
    arrive, _ = arrivals(graph, plans)
    return int(round(arrive[graph.nodes[-1].name][-1] + 1))


SKIP_SLACK = 4       # pixels of the shortcut FIFO beyond the model's peak occupancy


def skip_depths(graph: Graph, plans: list | None = None) -> dict:
    """{resadd name: shortcut FIFO depth} from the timing model in the steady state: two
    frames at the graph's interval, the input paced at the interval (every unit then runs
    at its own rate, as the slowest node's back-pressure makes it), the most shortcut pixels
    waiting for their body pixel, plus SKIP_SLACK. That is the pixels the body must take in
    before its output j (its lookahead: no deadlock) and those arriving while output j is in
    the body's pipeline (the body never waits for its input: full rate); the slack absorbs
    stalls of single beats. An unpaced input would size for bursts the back-pressure
    removes (a fast stem before a slow body would buffer a whole frame)."""
    plans = plans or units.plan_graph(graph)
    interval = max(p.cycles for p in plans)
    px = graph.input.h * graph.input.w
    arrive, taken = arrivals(graph, plans, frames=2, interval=interval, pace=interval / px)
    out = {}
    for i, node in enumerate(graph.nodes):
        if node.kind != "resadd":
            continue
        b = np.sort(arrive[graph.sources(i)[1]] + PIPE["fifo"])
        t = taken[node.name]
        waiting = np.searchsorted(b, t, side="right") - np.arange(len(t))
        out[node.name] = int(max(1, waiting.max())) + SKIP_SLACK
    return out


def unsized_skip_fifos(graph: Graph) -> list:
    """The graph's residual adds, each unsized one given depth 1: the depth enters the
    add's plan (its FIFO's price) but not its timing, so plans exist before sizing."""
    adds = [n for n in graph.nodes if n.kind == "resadd"]
    for n in adds:
        if n.skip_depth < 1:
            n.skip_depth = 1
    return adds


def size_skip_fifos(graph: Graph) -> dict:
    """Record every residual add's shortcut FIFO depth in the IR (skip_depth)."""
    unsized_skip_fifos(graph)
    depths = skip_depths(graph)
    for n in graph.nodes:
        if n.name in depths:
            n.skip_depth = depths[n.name]
    return depths


# ---------------------------------------------------------------------------------------
# The whole graph

def predict(graph: Graph, board, mult: dict | None = None) -> dict:
    """Cycles, interval, latency and resources per node and in total, for the folding the
    nodes carry. mult: node name -> {"dsp_cap": n} (int8 layers: DSPs at most)."""
    mult = mult or {}
    board = as_board(board)
    t = for_family(board.family)
    plans = units.plan_graph(graph)
    plans = dram_plans(graph, plans, board)
    nodes, total = [], Res()
    for node, p in zip(graph.nodes, plans):
        if weight_mem_of(node) == "dram":
            # weights streamed from DRAM: cf_axi_wread + cf_mvu_dram (generator/hw/dram.py)
            dp = dram_mod.plan(node, board)
            res = dram_res(dp, t)
            for r in ALL_RESOURCES:
                setattr(total, r, getattr(total, r) + getattr(res, r))
            nodes.append({"name": node.name, "kind": node.kind, "pe": node.pe,
                          "simd": node.simd, "cycles": p.cycles, "pipeline_depth": p.pipe,
                          "pipe": dp.pipe, "resources": res.as_dict(detail=True),
                          "weights_mem": "dram", "batch": dp.batch,
                          "dram": dram_mod.summary(dp, board)})
            continue
        m = mult.get(node.name)
        res, info = price(p, m.get("dsp_cap") if isinstance(m, dict) else None, t,
                          weight_mem_of(node))
        for r in ALL_RESOURCES:
            setattr(total, r, getattr(total, r) + getattr(res, r))
        nodes.append({"name": node.name, "kind": node.kind, "pe": node.pe, "simd": node.simd,
                      "cycles": p.cycles, "pipeline_depth": p.pipe,
                      **({"pipe": p.core.pipe} if p.kind in ("conv", "scalemac") else {}),
                      "resources": res.as_dict(detail=True),
                      **({"mult": info["mult"]} if "mult" in info else {}),
                      **({"lanes": info["lanes"]} if "lanes" in info else {}),
                      **{k: v for k, v in info.items() if k.endswith("_mem")}})
    shell = shell_resources(graph, t)
    for r in ALL_RESOURCES:
        setattr(total, r, getattr(total, r) + getattr(shell, r))
    interval = max(n["cycles"] for n in nodes)
    for n in nodes:
        n["share"] = n["cycles"] / interval
    avail = board.resources
    tot = total.as_dict()
    streamed = {n["name"]: n["dram"] for n in nodes if "dram" in n}
    extra = {}
    if streamed:
        # every DRAM-streamed layer at the pipeline's interval (slower than its own when
        # another node sets it): the bandwidth the design uses, against the board's
        used = sum(d["bytes_per_batch"] / d["batch"] for d in streamed.values()) \
            / interval * board.clock_mhz
        extra["dram"] = {"layers": streamed, "bandwidth_mbps": round(used, 1),
                         "bandwidth_available_mbps": round(board.dram_mbps, 1),
                         "port_bits": board.dram_port_bits}
    return {**extra, "nodes": nodes, "interval_cycles": interval,
            "latency_cycles": latency_cycles(graph, plans),
            "fps_at_clock": board.clock_mhz * 1e6 / interval, "clock_mhz": board.clock_mhz,
            "bottleneck": max(nodes, key=lambda n: n["cycles"])["name"],
            "resources": tot, "shell": shell.as_dict(),
            "utilization": {r: (tot[r] / avail[r]) if avail.get(r) else None
                            for r in ALL_RESOURCES}}
