"""RTL backend: hardware graph -> Verilog top stitching the rtl/ library units.

`render(graph, out_dir, board)` writes

    out_dir/rtl/cfgen_top.v     generated top (AXI4-Stream in/out, units + FIFOs)
    out_dir/rtl/cf_*.v          copies of the library units it uses
    out_dir/rtl/mem/*.hex       weights / thresholds / scales ($readmemh, one word per line)
    out_dir/rtl/manifest.json   what the simulation and synthesis drivers need
    out_dir/sim/cfgen_tb.v      simulation wrapper: per-node golden checkers, cycle stamps
    out_dir/sim/cfgen_sim.py    the cocotb test module (copied from sim/)

Memory files are referenced as "../rtl/mem/<file>" (MEM_DIR): run simulators and Yosys
from a sibling folder of rtl/ (sim/, synth/), as generator.rtlsim and generator.synth do.

Every node maps to a few library units (docs/RTL.md):
    conv      cf_swg (window, replayed C_out/PE times) -> cf_mvu -> cf_fifo
              tap-parallel (SIMD = m*C_in): cf_swg (pixels) -> cf_widen (m taps, replay) -> cf_mvu
    maxpool   cf_swg (pads with invert[]) -> cf_maxpool -> cf_fifo
    avgpool   cf_swg (pads with 0) -> cf_avgpool -> cf_fifo
    scalemac  cf_swg (k=1, replay) -> cf_scalemac -> cf_fifo
    globalsum cf_globalsum -> cf_fifo
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import escape, perf
from ..errors import BuildError
from ..ir import (AvgPoolNode, ConvNode, Graph, GlobalSumNode, MaxPoolNode, ScaleMacNode, Stream,
                  signed_bits, unsigned_bits)

REPO = Path(__file__).resolve().parent.parent.parent
LIB_DIR = REPO / "rtl"
TEMPLATE_DIR = REPO / "templates" / "rtl"
SIM_SRC_DIR = REPO / "sim"

TOP = "cfgen_top"
TB = "cfgen_tb"
MEM_DIR = "../rtl/mem/"
VEC_DIR = "../vectors/"
SIM_MODULE = "cfgen_sim"
MAXF = 64                    # per-frame cycle stamps kept by the test bench
# Extra FIFO behind every node (0: none). Every unit already ends in a small output FIFO
# fed by credits (registered valid/ready), so none is needed for correctness or rate.
NODE_FIFO_DEPTH = 0
# Multiplier styles of the int8 first layer that cf_mvu implements (fold --mult auto picks
# among these): 'dsp' one product per DSP48 (MULT 0), 'dsp2' two per DSP48 (MULT 1).
MULT_STYLES = ("dsp", "dsp2")
# matrix-unit outputs at least this wide get a one-slot output register (out_fifo_depth)
OUT_SLOT_BITS = 256
# window-generator buffers of at least this many bits (and 32 pixels) go to block RAM
SWG_BLOCK_BITS = 65536

# library files, in dependency order
LIBRARY = ["cf_fifo.v", "cf_rom.v", "cf_swg.v", "cf_widen.v", "cf_add.v", "cf_mvu.v", "cf_maxpool.v", "cf_avgpool.v", "cf_scalemac.v",
           "cf_globalsum.v", "cf_axis_in.v", "cf_axis_out.v"]
SIM_LIBRARY = ["cf_check.v"]


# ----------------------------------------------------------------------------- helpers

def next_pow2(n: int) -> int:
    p = 1
    while p < n:
        p <<= 1
    return p


def clog2(n: int) -> int:
    return max(0, (int(n) - 1).bit_length())


def fifo_cw(depth: int) -> int:
    """Width of cf_fifo's count port."""
    return clog2(depth + 1)


def tdata_width(bits: int) -> int:
    return (bits + 7) // 8 * 8


def vhex(width: int, value: int) -> str:
    """A sized Verilog hex literal."""
    value &= (1 << width) - 1
    return f"{width}'h{value:x}"


def vstr(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def ident(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return s if re.match(r"[A-Za-z_]", s) else "n_" + s


def pack_words(values: np.ndarray, bits: int) -> list[str]:
    """(words, fields) integers -> hex words (MSB first); field f at [f*bits, (f+1)*bits),
    two's complement for negative values."""
    v = np.asarray(values, dtype=np.int64)
    if v.ndim == 1:
        v = v[:, None]
    nw, nf = v.shape
    total = nf * bits
    shifts = np.minimum(np.arange(bits), 63).astype(np.int64)
    bitarr = ((v[:, :, None] >> shifts) & 1).astype(np.uint8).reshape(nw, total)
    pad = (-total) % 8
    if pad:
        bitarr = np.concatenate([bitarr, np.zeros((nw, pad), np.uint8)], axis=1)
    by = np.packbits(bitarr, axis=1, bitorder="little")[:, ::-1]
    digits = (total + 3) // 4
    return [row.tobytes().hex()[-digits:] for row in by]


def write_mem(path: Path, words: list[str]) -> None:
    path.write_text("".join(w + "\n" for w in words))


def value_range(kind: str, bits: int) -> tuple[int, int]:
    if kind == "bit":
        return 0, 1
    if kind == "uint":
        return 0, (1 << bits) - 1
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


# ----------------------------------------------------------------------------- plan

@dataclass
class Unit:
    module: str
    inst: str
    params: list            # [(name, verilog literal)]
    inp: str                # input stream prefix
    out: str                # output stream prefix
    out_w: int
    depth: int = 0          # cf_fifo only

    def to_json(self) -> dict:
        return {"module": self.module, "inst": self.inst, "params": dict(self.params),
                "in": self.inp, "out": self.out, "out_w": self.out_w}


@dataclass
class NodePlan:
    index: int
    name: str
    kind: str
    desc: str
    stream: str             # output stream prefix (after the node FIFO)
    out_w: int
    beats: int              # beats per frame
    cycles: int             # ideal cycles per frame of the node's core unit
    units: list = field(default_factory=list)
    mems: dict = field(default_factory=dict)   # file name -> words


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise BuildError(msg)


def _swg(i: int, inp_prefix: str, s: Stream, k: int, stride: int, pad: int, simd: int, nf: int,
         pad_pixel: int, taps: int = 1) -> Unit:
    need = (k - 1) * s.w + k + (stride - 1) * s.w + k + 2
    depth = next_pow2(max(need, 4))
    pw = s.c * s.bits
    params = [("H", s.h), ("W", s.w), ("C", s.c), ("B", s.bits), ("K", k), ("S", stride),
              ("P", pad), ("SIMD", simd), ("NF", nf), ("PAD", vhex(pw, pad_pixel)),
              ("DEPTH", depth), ("RSTYLE", swg_ram_style(depth, pw)), ("TAPS", taps)]
    return Unit("cf_swg", f"u{i}_swg", params, inp_prefix, f"n{i}_win", taps * simd * s.bits)


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


def swg_ram_style(depth: int, width: int) -> int:
    """cf_swg RSTYLE: block RAM (1) for a deep line buffer of wide pixels (64 pixels of
    192 x 17 bits would take 4,352 LUTs as LUT RAM), else the tool's choice (0)."""
    return 1 if depth >= 32 and depth * width >= SWG_BLOCK_BITS else 0


def rom_style(depth: int, width: int) -> int:
    """cf_rom STYLE for a weight memory: block RAM when it is deep and big enough to fill
    block RAMs reasonably (wide shallow memories are cheaper in LUTs), else the tool's choice."""
    return 1 if depth >= 64 and depth * width >= 18432 else 0


def _pad_pixel(value: int, s: Stream) -> int:
    v = int(value) & ((1 << s.bits) - 1)
    out = 0
    for c in range(s.c):
        out |= v << (c * s.bits)
    return out


def _finish(i: int, units: list, width: int, depth: int = NODE_FIFO_DEPTH) -> list:
    """Name the node's output stream n<i>, adding a FIFO when depth > 0."""
    if depth > 0:
        units.append(Unit("cf_fifo", f"u{i}_fifo", [("W", width), ("DEPTH", depth)],
                          units[-1].out, f"n{i}", width, depth=depth))
    else:
        units[-1].out = f"n{i}"
    return units


def plan_conv(i: int, node: ConvNode, inp: str, tag: str) -> NodePlan:
    s, o = node.inp, node.out
    _check(o.c % node.pe == 0, f"{node.name}: PE={node.pe} must divide C_out={o.c}")
    taps = node.simd // s.c if node.simd > s.c else 1     # whole taps per beat (cf_widen)
    _check(s.c % node.simd == 0 or (node.simd % s.c == 0 and (node.k * node.k) % taps == 0),
           f"{node.name}: SIMD={node.simd} must divide C_in={s.c} or be m*C_in with m "
           f"dividing k*k={node.k * node.k}")
    xnor = node.matrix == "xnor"
    _check(node.matrix in ("xnor", "int8"), f"{node.name}: unknown matrix '{node.matrix}'")
    _check(node.act in ("threshold", "relu_offset"), f"{node.name}: unknown act '{node.act}'")
    _check(s.bits == (1 if xnor else 8), f"{node.name}: {node.matrix} input must be "
           f"{1 if xnor else 8}-bit, got {s.bits}")
    pe, simd = node.pe, node.simd
    K = node.K
    sf, nf = K // simd, o.c // pe
    w = np.asarray(node.weights).astype(np.int64).reshape(o.c, K)
    # weights: word nf*SF + sf, lane p, element i = w[nf*PE + p, sf*SIMD + i]
    wq = w.reshape(nf, pe, sf, simd).transpose(0, 2, 1, 3).reshape(nf * sf, pe * simd)
    mult = getattr(node, "mult", "dsp") or "dsp"
    dsp2 = not xnor and mult == "dsp2"
    if dsp2:
        # two products per DSP48 (cf_mvu MULT 1): lane 2j+1 holds w_hi - (w_lo < 0), so the
        # A port is the plain concatenation {h, sign-extended w_lo} (docs/RTL.md)
        _check(int(w.min()) >= -127 and int(w.max()) <= 127,
               f"{node.name}: dsp2 multipliers need int8 weights in [-127, 127]")
        wp = wq.reshape(nf * sf, pe, simd).copy()
        npr = pe // 2
        wp[:, 1:2 * npr:2, :] -= (wp[:, 0:2 * npr:2, :] < 0)
        wq = wp.reshape(nf * sf, pe * simd)
    wwords = pack_words(wq, 1 if xnor else 8)
    if xnor:
        acc_lo, acc_hi = -K, K
    else:
        pos = np.where(w > 0, w, 0).sum(axis=1) * 255
        neg = np.where(w < 0, w, 0).sum(axis=1) * 255
        acc_lo, acc_hi = int(neg.min()), int(pos.max())
    aw = max(signed_bits(acc_lo, acc_hi), int(node.acc_bits or 0))
    if dsp2:
        # the lanes accumulate acc' = sum (x - 128) * w = acc - 128 * sum(w)
        wsum = w.sum(axis=1)
        pos = np.where(w > 0, w, 0).sum(axis=1)
        neg = np.where(w < 0, w, 0).sum(axis=1)
        aw = max(aw, signed_bits(int((127 * neg - 128 * pos).min()),
                                 int((127 * pos - 128 * neg).max())))
    frac = 0
    if node.act == "threshold":
        _check(o.bits == 1 and o.kind == "bit", f"{node.name}: threshold output must be 'bit'")
        thr = np.asarray(node.thresholds).astype(np.int64)
        d = np.asarray(node.direction).astype(np.int64)
        if xnor:
            # acc = 2*pc - K:  acc >= t <=> pc >= ceil((t+K)/2);  acc <= t <=> pc <= floor((t+K)/2)
            up = -((-(thr + K)) // 2)
            dn = (thr + K) // 2
            val = np.clip(np.where(d > 0, up, dn), -1, K + 1)
        else:
            lo = np.where(w < 0, w, 0).sum(axis=1) * 255
            hi = np.where(w > 0, w, 0).sum(axis=1) * 255
            val = np.clip(thr, lo - 1, hi + 1)
        flag = (d > 0).astype(np.int64)
        tw = signed_bits(int(val.min()), int(val.max()))
        ob = 1
    else:
        off = np.asarray(node.offset).astype(np.int64)
        sgn = np.asarray(node.sign).astype(np.int64)
        val, flag = off, (sgn > 0).astype(np.int64)
        tw = signed_bits(int(min(off.min(), 0)), int(max(off.max(), 0)))
        frac = int(node.frac_bits)
        ob = o.bits
        _check(o.kind in ("int", "uint"), f"{node.name}: relu_offset output must be int/uint")
        # largest reachable output must fit the stream
        top = int(np.max(np.maximum(sgn * acc_hi, sgn * acc_lo) * (1 << frac) + off))
        room = (1 << (ob - (1 if o.kind == "int" else 0))) - 1
        _check(top <= room, f"{node.name}: relu_offset output reaches {top}, "
               f"more than the {o.kind}{ob} stream holds")
    if dsp2:
        # acc = acc' + 128 * sum(w) (pad taps included): fold the constant into the parameter
        shift = 128 * wsum
        if node.act == "threshold":
            val = val - shift
        else:
            val = val + sgn * shift * (1 << frac)
        tw = signed_bits(int(min(val.min(), 0)), int(max(val.max(), 0)))
    lanes = (val & ((1 << tw) - 1)) | (flag << tw)      # {flag, value}
    pwords = pack_words(lanes.reshape(nf, pe), tw + 1)
    fd = out_fifo_depth(o.c * ob, sf * nf)
    nm = tag
    if taps > 1:
        # tap-parallel: whole pixels (K*K beats per window, no replay), or whole window
        # rows (K beats, perf.swg_taps), gathered by cf_widen into SIMD-wide beats and
        # replayed NF times
        rt = perf.swg_taps(node)
        swg = _swg(i, inp, s, node.k, node.stride, node.pad, s.c, 1, _pad_pixel(node.pad_value, s),
                   rt)
        wid = Unit("cf_widen", f"u{i}_widen", [("IW", rt * s.beat_bits), ("R", taps // rt),
                                                ("SF", sf), ("NF", nf)], swg.out, f"n{i}_wide",
                   simd * s.bits)
    else:
        swg = _swg(i, inp, s, node.k, node.stride, node.pad, simd, nf, _pad_pixel(node.pad_value, s))
        wid = None
    mvu = Unit("cf_mvu", f"u{i}_mvu", [
        ("MATRIX", 0 if xnor else 1), ("SIMD", simd), ("PE", pe), ("KD", K), ("CO", o.c),
        ("ACT", 0 if node.act == "threshold" else 1), ("OB", ob), ("AW", aw), ("TW", tw),
        ("FRAC", frac), ("FD", fd),
        ("WFILE", vstr(MEM_DIR + f"{nm}_w.hex")),
        ("WSTYLE", rom_style(nf * sf, pe * simd * (1 if xnor else 8))),
        ("PFILE", vstr(MEM_DIR + f"{nm}_p.hex")), ("MULT", 1 if dsp2 else 0)],
        (wid or swg).out, f"n{i}_core", o.beat_bits)
    plan = NodePlan(i, node.name, "conv", f"{node.matrix} k{node.k} s{node.stride} p{node.pad} "
                    f"{s.c}->{o.c} {node.act} PE={pe} SIMD={simd}{' dsp2' if dsp2 else ''}", f"n{i}", o.beat_bits,
                    o.h * o.w, perf.node_cycles(node))
    plan.units = _finish(i, [swg] + ([wid] if wid else []) + [mvu], o.beat_bits)
    plan.mems = {f"{nm}_w.hex": wwords, f"{nm}_p.hex": pwords}
    return plan


def plan_maxpool(i: int, node: MaxPoolNode, inp: str, tag: str) -> NodePlan:
    s, o = node.inp, node.out
    _check(s.kind == "bit", f"{node.name}: max-pool input must be a bit stream")
    inv = np.asarray(node.invert if node.invert is not None else np.zeros(s.c)).astype(np.int64)
    invv = int(sum(int(b & 1) << c for c, b in enumerate(inv)))
    swg = _swg(i, inp, s, node.k, node.stride, node.pad, s.c, 1, invv)
    core = Unit("cf_maxpool", f"u{i}_pool", [("C", s.c), ("KK", node.k * node.k),
                                             ("INV", vhex(s.c, invv)), ("FD", 2)],
                swg.out, f"n{i}_core", o.beat_bits)
    plan = NodePlan(i, node.name, "maxpool", f"k{node.k} s{node.stride} p{node.pad} C={s.c}",
                    f"n{i}", o.beat_bits, o.h * o.w, o.h * o.w * node.k * node.k)
    plan.units = _finish(i, [swg, core], o.beat_bits)
    return plan


def avgpool_simd(node: AvgPoolNode, budget: int) -> int:
    """Channels per cycle of an average pool: the fewest (dividing C) that keep its
    OH*OW*K*K*(C/SIMD) cycles within `budget` (half the slowest other node), so the pool
    never sets the interval but needs only SIMD adders/comparators instead of C."""
    o, c = node.out, node.inp.c
    per_chunk = o.h * o.w * node.k * node.k
    for simd in range(1, c + 1):
        if c % simd == 0 and per_chunk * (c // simd) <= budget:
            return simd
    return c


def plan_avgpool(i: int, node: AvgPoolNode, inp: str, tag: str, budget: int = 0) -> NodePlan:
    s, o = node.inp, node.out
    _check(s.kind in ("int", "uint"), f"{node.name}: average-pool input must be int/uint")
    kk = node.k * node.k
    lo, hi = value_range(s.kind, s.bits)
    smin, smax = min(0, lo * kk), hi * kk
    sw = max(signed_bits(smin, smax), int(node.sum_bits or 0))
    thr = np.clip(np.asarray(node.thresholds).astype(np.int64), smin - 1, smax + 1)
    flag = (np.asarray(node.direction).astype(np.int64) > 0).astype(np.int64)
    tw = signed_bits(int(thr.min()), int(thr.max()))
    lanes = (thr & ((1 << tw) - 1)) | (flag << tw)
    simd = avgpool_simd(node, budget)
    cf = s.c // simd
    twords = pack_words(lanes.reshape(cf, simd), tw + 1)
    swg = _swg(i, inp, s, node.k, node.stride, node.pad, simd, 1, 0)
    core = Unit("cf_avgpool", f"u{i}_pool", [
        ("C", s.c), ("SIMD", simd), ("IB", s.bits), ("ISIGNED", int(s.kind == "int")),
        ("KK", kk), ("SW", sw), ("TW", tw), ("FD", 2),
        ("TFILE", vstr(MEM_DIR + f"{tag}_t.hex"))],
        swg.out, f"n{i}_core", o.beat_bits)
    plan = NodePlan(i, node.name, "avgpool", f"k{node.k} s{node.stride} p{node.pad} C={s.c} "
                    f"SIMD={simd}", f"n{i}", o.beat_bits, o.h * o.w, o.h * o.w * kk * cf)
    plan.units = _finish(i, [swg, core], o.beat_bits)
    plan.mems = {f"{tag}_t.hex": twords}
    return plan


def plan_scalemac(i: int, node: ScaleMacNode, inp: str, tag: str) -> NodePlan:
    s, o = node.inp, node.out
    n, pe, simd = node.n, node.pe, node.simd
    ci, co = s.c, o.c
    _check(ci % n == 0, f"{node.name}: group size n={n} must divide C_in={ci}")
    _check(co % pe == 0, f"{node.name}: PE={pe} must divide C_out={co}")
    _check(ci % simd == 0 and (n % simd == 0 or simd % n == 0),
           f"{node.name}: SIMD={simd} must divide C_in={ci} and divide or be a multiple of n={n}")
    _check(s.kind in ("int", "uint"), f"{node.name}: scale MAC input must be int/uint")
    sf, nf = ci // simd, co // pe
    gs = min(simd, n)
    gpc, cpg = simd // gs, n // gs
    w = np.asarray(node.weights).astype(np.int64).reshape(co, ci)
    wq = w.reshape(nf, pe, sf, simd).transpose(0, 2, 1, 3).reshape(nf * sf, pe * simd)
    scales = np.asarray(node.scales).astype(np.int64)
    _check(scales.min() >= 0, f"{node.name}: scales must be unsigned")
    scw = max(int(node.scale_bits), unsigned_bits(int(scales.max())))
    if cpg == 1:
        sidx = np.arange(sf)[:, None] * gpc + np.arange(gpc)[None, :]
    else:
        sidx = (np.arange(sf) // cpg)[:, None]
    swords = pack_words(scales[sidx], scw)
    bias = np.asarray(node.bias).astype(np.int64)
    bw = signed_bits(int(min(bias.min(), 0)), int(max(bias.max(), 0)))
    bwords = pack_words(bias.reshape(nf, pe), bw)
    swg = _swg(i, inp, s, 1, 1, 0, simd, nf, 0)
    core = Unit("cf_scalemac", f"u{i}_smac", [
        ("IB", s.bits), ("ISIGNED", int(s.kind == "int")), ("SIMD", simd), ("PE", pe),
        ("CI", ci), ("CO", co), ("N", n), ("SCW", scw), ("GW", int(node.group_bits or 1)),
        ("ZW", int(node.acc_bits or 1)), ("BW", bw), ("OB", o.bits), ("RELU", int(bool(node.relu))),
        ("FD", out_fifo_depth(o.beat_bits, sf * nf)),
        ("WFILE", vstr(MEM_DIR + f"{tag}_w.hex")), ("WSTYLE", rom_style(nf * sf, pe * simd * 8)),
        ("SFILE", vstr(MEM_DIR + f"{tag}_s.hex")),
        ("BFILE", vstr(MEM_DIR + f"{tag}_b.hex"))],
        swg.out, f"n{i}_core", o.beat_bits)
    plan = NodePlan(i, node.name, "scalemac", f"{ci}->{co} n={n} PE={pe} SIMD={simd}",
                    f"n{i}", o.beat_bits, o.h * o.w, o.h * o.w * sf * nf)
    plan.units = _finish(i, [swg, core], o.beat_bits)
    plan.mems = {f"{tag}_w.hex": pack_words(wq, 8), f"{tag}_s.hex": swords,
                 f"{tag}_b.hex": bwords}
    return plan


def plan_globalsum(i: int, node: GlobalSumNode, inp: str, tag: str) -> NodePlan:
    s, o = node.inp, node.out
    _check(s.kind in ("int", "uint"), f"{node.name}: global sum input must be int/uint")
    core = Unit("cf_globalsum", f"u{i}_gsum", [
        ("C", s.c), ("IB", s.bits), ("ISIGNED", int(s.kind == "int")), ("N", s.h * s.w),
        ("OB", o.bits), ("FD", 2)], inp, f"n{i}_core", o.beat_bits)
    plan = NodePlan(i, node.name, "globalsum", f"{s.h}x{s.w}x{s.c} -> {o.bits}-bit sums",
                    f"n{i}", o.beat_bits, 1, s.h * s.w)
    plan.units = _finish(i, [core], o.beat_bits)
    return plan


PLANNERS = {"conv": plan_conv, "maxpool": plan_maxpool, "avgpool": plan_avgpool,
            "scalemac": plan_scalemac, "globalsum": plan_globalsum}


def core_cycles(node) -> int:
    """Cycles per frame of a node's core unit as the RTL implements it (pools: K*K cycles
    per output pixel at full channel width)."""
    o = node.out
    if isinstance(node, ConvNode):
        return perf.node_cycles(node)
    if isinstance(node, ScaleMacNode):
        return o.h * o.w * (node.inp.c // node.simd) * (o.c // node.pe)
    if isinstance(node, (MaxPoolNode, AvgPoolNode)):
        return o.h * o.w * node.k * node.k
    return node.inp.h * node.inp.w


def plan_graph(graph: Graph) -> list[NodePlan]:
    others = [core_cycles(n) for n in graph.nodes if not isinstance(n, AvgPoolNode)]
    budget = max(others) // 2 if others else 0
    plans = []
    prev = "in"
    prev_stream = graph.input
    tags = set()
    for i, node in enumerate(graph.nodes):
        if (node.inp.h, node.inp.w, node.inp.c, node.inp.bits) != \
                (prev_stream.h, prev_stream.w, prev_stream.c, prev_stream.bits):
            raise BuildError(f"node {node.name}: input stream {node.inp} does not match the "
                             f"previous stream {prev_stream}")
        tag = ident(node.name)
        while tag in tags:
            tag += "_"
        tags.add(tag)
        if node.kind not in PLANNERS:
            raise BuildError(f"RTL backend: node kind '{node.kind}' is not supported")
        if isinstance(node, AvgPoolNode):
            p = plan_avgpool(i, node, prev, tag, budget)
        else:
            p = PLANNERS[node.kind](i, node, prev, tag)
        plans.append(p)
        prev, prev_stream = p.stream, node.out
    return plans


# ----------------------------------------------------------------------------- render

def _jinja():
    import jinja2
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=False, lstrip_blocks=False)
    env.globals["fifo_cw"] = fifo_cw
    env.filters.update(escape.filters())
    return env


def flag_fifo_depth(plans) -> int:
    """Depth of cf_axis_out's per-frame flag FIFO (input TLAST resynchronisation): room for
    the frames between the AXI adapters, estimated generously as two per unit plus four
    (frames overlap by a few rows per window generator). Too small a depth would only make
    cf_axis_in hold a frame's last beat (throughput), never lose a flag; 1-bit entries."""
    return next_pow2(max(4, 2 * sum(len(p.units) for p in plans) + 4))


def _stream_desc(s: Stream) -> str:
    return f"{s.h}x{s.w}x{s.c} {s.kind}{s.bits}"


def render(graph: Graph, out_dir, board: dict | None = None) -> dict:
    """Write out_dir/rtl/ and out_dir/sim/; returns the manifest."""
    board = dict(board or {})
    out = Path(out_dir)
    rtl, mem, sim = out / "rtl", out / "rtl" / "mem", out / "sim"
    plans = plan_graph(graph)
    if mem.exists():
        shutil.rmtree(mem)
    mem.mkdir(parents=True, exist_ok=True)
    sim.mkdir(parents=True, exist_ok=True)
    for p in plans:
        for fname, words in p.mems.items():
            write_mem(mem / fname, words)

    in_w, out_w = graph.input.beat_bits, graph.output.beat_bits
    ctx = {
        "top": TOP, "graph_name": graph.name, "mem_dir": MEM_DIR,
        "in_w": in_w, "in_tw": tdata_width(in_w), "in_beats": graph.input.h * graph.input.w,
        "in_desc": _stream_desc(graph.input),
        "out_w": out_w, "out_tw": tdata_width(out_w), "out_beats": graph.output.h * graph.output.w,
        "out_desc": _stream_desc(graph.output),
        "nodes": plans, "last": plans[-1].stream,
        "flag_depth": flag_fifo_depth(plans),
    }
    (rtl / f"{TOP}.v").write_text(_jinja().get_template("top.v.j2").render(**ctx))
    for f in LIBRARY + SIM_LIBRARY:
        shutil.copy2(LIB_DIR / f, rtl / f)
    shutil.copy2(SIM_SRC_DIR / f"{SIM_MODULE}.py", sim / f"{SIM_MODULE}.py")

    manifest = {
        "top": TOP, "tb": TB, "graph": graph.name,
        "sources": LIBRARY + [f"{TOP}.v"], "sim_sources": SIM_LIBRARY,
        "mem_dir": MEM_DIR,
        "input": {"width": in_w, "tdata": ctx["in_tw"], "beats": ctx["in_beats"],
                  "stream": graph.input.__dict__},
        "output": {"width": out_w, "tdata": ctx["out_tw"], "beats": ctx["out_beats"],
                   "stream": graph.output.__dict__, "node": plans[-1].name},
        "nodes": [{"index": p.index, "name": p.name, "kind": p.kind, "desc": p.desc,
                   "stream": p.stream, "width": p.out_w, "beats": p.beats,
                   "ideal_cycles": p.cycles, "units": [u.to_json() for u in p.units]}
                  for p in plans],
        "predicted_interval_cycles": max(p.cycles for p in plans),
        "flag_fifo_depth": ctx["flag_depth"],
        "board": {"name": board.get("name", "generic"), "part": board.get("part", ""),
                  "family": board.get("family", "xc7"),
                  "clock_mhz": board.get("clock_mhz", 100),
                  "resources": board.get("resources", {})},
    }
    (rtl / "manifest.json").write_text(json.dumps(manifest, indent=2))
    vec = out / "vectors"
    if (vec / "input.hex").is_file():
        write_tb(out)
    return manifest


def vector_frames(out_dir) -> int:
    """Frames available in out_dir/vectors (from meta.json, else from input.hex)."""
    out = Path(out_dir)
    meta = out / "vectors" / "meta.json"
    if meta.is_file():
        return int(json.loads(meta.read_text())["frames"])
    man = json.loads((out / "rtl" / "manifest.json").read_text())
    lines = sum(1 for ln in (out / "vectors" / "input.hex").read_text().split() if ln)
    return lines // man["input"]["beats"]


def write_tb(out_dir) -> Path:
    """(Re)write out_dir/sim/cfgen_tb.v for the vectors present in out_dir/vectors."""
    out = Path(out_dir)
    man = json.loads((out / "rtl" / "manifest.json").read_text())
    frames = vector_frames(out)
    if frames < 1:
        raise BuildError(f"{out}/vectors holds no frames")
    nodes = [{"index": n["index"], "name": n["name"], "stream": n["stream"], "out_w": n["width"],
              "beats": n["beats"]} for n in man["nodes"]]
    ctx = {"tb": TB, "top": man["top"], "vec_dir": VEC_DIR, "frames": frames,
           "maxf": MAXF, "maxf_bits": clog2(MAXF),
           "in_w": man["input"]["width"], "in_tw": man["input"]["tdata"],
           "in_beats": man["input"]["beats"],
           "out_w": man["output"]["width"], "out_tw": man["output"]["tdata"],
           "out_beats": man["output"]["beats"], "nodes": nodes}
    path = out / "sim" / f"{TB}.v"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = _jinja().get_template("tb.v.j2").render(**ctx)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path
