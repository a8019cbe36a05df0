"""HLS backend: a hardware Graph -> a Vitis HLS C++ project (dataflow top, parameter
headers, C test bench, Tcl scripts) and a Vivado block-design script.

    render(graph, out_dir, board) -> Path      writes out_dir/hls/ and out_dir/vivado/

Layout written (see docs/HLS.md):

    out_dir/hls/include/      copy of the header library (repo hls/*.h)
    out_dir/hls/sim/          C-simulation shims (hls_stream.h, ap_axi_sdata.h, cf_tbio.h)
    out_dir/hls/src/<top>.h   top prototype, port widths, AP_INT_MAX_W
    out_dir/hls/src/<top>.cpp synthesizable dataflow top (taps only under -DCF_TRACE in C-sim)
    out_dir/hls/src/nodes/<node>.h  one per node: constant tables + the node's dataflow function
    out_dir/hls/src/<top>_trace.h   C-sim trace declarations
    out_dir/hls/tb/tb.cpp     C test bench: checks every node against vectors/<node>.hex
    out_dir/hls/*.tcl         Vitis HLS: csim / csynth / cosim / export (IP catalog)
    out_dir/hls/manifest.json what generator.flows.csim and host code need (widths, beats, nodes)
    out_dir/vivado/bd.tcl     Zynq PS + AXI DMA + accelerator block design, .bit and .hwh

Every width comes from the IR (Stream.bits, acc_bits, thr_bits, sum_bits, group_bits,
scale_bits); widths the IR does not carry (offsets, biases) are derived from the arrays.
The top wires the graph (a DAG, `_wire`): each node reads its sources' streams, a stream
read twice is forked (cf::fork_stream), a residual add's shortcut input gets its plan's
shortcut FIFO depth (units.resadd: skip_depth rounded up to a power of two).
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np

from ..core import paths
from ..core import escape, names
from ..hw import units
from ..core.errors import BuildError
from ..hw.ir import (AvgPoolNode, ConvNode, Graph, GlobalSumNode, MaxPoolNode, ResAddNode, ScaleMacNode, Stream,
                     check_node, check_stream, out_dim, signed_bits)

REPO_ROOT = paths.REPO_ROOT
HLS_LIB = paths.HLS_LIB
TEMPLATES = paths.TEMPLATES / "hls"

#: FIFO depth between units (2 is deadlock-free on a chain; the stream feeding a residual
#: add's shortcut input takes the add's shortcut FIFO depth instead, units.resadd's plan).
DEFAULT_FIFO_DEPTH = 2

# identifiers are decided once, in generator/core/names.py
sanitize, unique_idents = names.sanitize, names.unique_idents


c_string = escape.c_string


# --------------------------------------------------------------------------- packing / literals

def pack_values(values, bits: int) -> int:
    """Values (ints, two's complement if negative) -> one word, value i at bits [i*bits, (i+1)*bits)."""
    mask = (1 << bits) - 1
    w = 0
    for i, v in enumerate(np.asarray(values).reshape(-1).tolist()):
        w |= (int(v) & mask) << (i * bits)
    return w


def pack_matrix(m: np.ndarray, bits: int, simd: int, pe: int) -> list[list[int]]:
    """Matrix [MH, MW] -> ROM words [pe][nf*SF + sf]: row nf*PE+pe, columns sf*SIMD.. (SIMD*bits each)."""
    m = np.asarray(m)
    mh, mw = m.shape
    if mw % simd or mh % pe:
        raise BuildError(f"folding: SIMD {simd} must divide {mw} and PE {pe} must divide {mh}")
    sf, nf = mw // simd, mh // pe
    mask = (1 << bits) - 1
    chunks = (m.astype(np.int64).reshape(mh, sf, simd) & mask).astype(object)
    shifts = np.array([1 << (s * bits) for s in range(simd)], dtype=object)
    words = (chunks * shifts).sum(axis=2)                       # [MH, SF] python ints
    out = [[0] * (nf * sf) for _ in range(pe)]
    for o in range(mh):
        n, p = divmod(o, pe)
        out[p][n * sf:(n + 1) * sf] = [int(x) for x in words[o]]
    return out


def per_lane(values, pe: int) -> list[list[int]]:
    """Per-channel values [MH] -> [pe][nf] (channel nf*PE + pe)."""
    v = [int(x) for x in np.asarray(values).reshape(-1)]
    if len(v) % pe:
        raise BuildError(f"PE {pe} must divide {len(v)} channels")
    nf = len(v) // pe
    return [[v[n * pe + p] for n in range(nf)] for p in range(pe)]


def lane_bits(flags, pe: int) -> list[int]:
    """Per-channel flags [MH] (truthy = 1) -> words [nf], bit pe = flag of channel nf*PE + pe."""
    f = [1 if x else 0 for x in np.asarray(flags).reshape(-1)]
    nf = len(f) // pe
    return [sum(f[n * pe + p] << p for p in range(pe)) for n in range(nf)]


def rom_ctype(width: int) -> str:
    return f"cf::rom<{width}>::type"


def rom_literal(value: int, width: int) -> str:
    """A brace-init literal for cf::rom<width>::type."""
    value = int(value)
    if value < 0 or value >> width:
        raise BuildError(f"value {value} does not fit {width} unsigned bits")
    if width <= 32:
        return f"0x{value:x}u"
    if width <= 64:
        return f"0x{value:x}ull"
    limbs = [(value >> (64 * i)) & ((1 << 64) - 1) for i in range((width + 63) // 64)]
    return "{{" + ", ".join(f"0x{x:x}ull" for x in limbs) + "}}"


def srom_literal(value: int, width: int) -> str:
    value = int(value)
    if not -(1 << (width - 1)) <= value < (1 << (width - 1)):
        raise BuildError(f"value {value} does not fit {width} signed bits")
    if value == -(1 << 63):
        return "(-9223372036854775807ll - 1)"
    return f"{value}ll" if width > 32 else str(value)


def c_init(nested, fmt, per_line: int = 8, indent: int = 2) -> str:
    """Nested lists -> C brace initializer, leaves formatted with fmt(x)."""
    def rec(x, depth):
        if isinstance(x, (list, tuple)):
            if x and isinstance(x[0], (list, tuple)):
                pad = " " * (indent * (depth + 1))
                inner = (",\n" + pad).join(rec(y, depth + 1) for y in x)
                return "{\n" + pad + inner + "}"
            items = [fmt(y) for y in x]
            lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
            pad = " " * (indent * (depth + 1))
            return "{" + (",\n" + pad).join(lines) + "}"
        return fmt(x)
    return rec(nested, 0)


def _bits_of(values) -> int:
    v = np.asarray(values, dtype=np.int64)
    return signed_bits(int(v.min()), int(v.max())) if v.size else 1


def axi_bits(beat_bits: int) -> int:
    """TDATA width of an external port: the beat padded to whole bytes."""
    return ((beat_bits + 7) // 8) * 8


def dma_bits(axi: int) -> int:
    """AXI DMA stream width for a port of `axi` bits: the largest power-of-two byte count
    (<= 128 bytes) dividing the port's bytes, so that the AXI4-Stream width converter
    between DMA and accelerator (when the widths differ) has an integer ratio."""
    nbytes, p = axi // 8, 1
    while p * 2 <= 128 and nbytes % (p * 2) == 0:
        p *= 2
    return p * 8


# --------------------------------------------------------------------------- node plans

class NodePlan:
    """What one node contributes to the project: constant tables, its dataflow function and,
    with run-time weights, its load function (`loads`: statements reading its memories from
    the weight stream, in stream order)."""

    def __init__(self, node, ident: str, fifo_depth: int, runtime: bool = False):
        self.node = node
        self.runtime = runtime            # tables written by the load mode (docs/WEIGHTS.md)
        self.loads: list[str] = []        # statements of node_<ident>_load(wgt, f)
        self.load_locals: list[str] = []  # its local declarations and pragmas
        self.ident = ident
        self.name = node.name
        self.kind = node.kind
        self.in_w = node.inp.beat_bits
        self.out_w = node.out.beat_bits
        self.in_beats = node.inp.h * node.inp.w
        self.out_beats = node.out.h * node.out.w
        self.fifo_depth = fifo_depth
        self.tables: list[str] = []       # C++ definitions
        self.partitions: list[str] = []   # pragmas inside the node function
        self.streams: list[tuple[str, int]] = []
        self.calls: list[str] = []
        self.summary: dict = {}
        self.max_width = max(self.in_w, self.out_w)
        # a second input (a residual add's shortcut, port b): its beat width, 0 without one
        self.in_b_w = 0
        # depth of the stream feeding each input port in the top (set by the planner)
        self.port_depths = [fifo_depth]
        # set by the top's wiring (_wire): the stream of each input port, the depth of the
        # output stream, the fork of the output (None when one node reads it)
        self.in_streams: list[str] = []
        self.out_depth = fifo_depth
        self.fork = None

    def table(self, text: str) -> None:
        self.tables.append(text)

    def load(self, role: str, call: str, lane_bits: int) -> None:
        """One memory's loader call (role: the unit plan's memory role, checked against the
        plan's memory order by _order_loads); lane_bits: the widest lane it cuts."""
        self.loads.append((role, call))
        self.max_width = max(self.max_width, lane_bits + 64)

    def stream(self, suffix: str, width: int) -> str:
        name = f"{self.ident}_{suffix}"
        self.streams.append((name, width))
        self.max_width = max(self.max_width, width)
        return name


_check_stream = check_stream


def _timing(up) -> dict:
    """The unit plan's cycles and pipeline depth (the manifest reports the same figures as
    the cost model and the RTL manifest)."""
    return {"cycles_per_frame": up.cycles, "pipeline_depth": up.pipe}


def _window(p: NodePlan, node, src: str, simd: int, pad_word: int, k: int, stride: int, pad: int,
            taps: int = 1) -> str:
    """sliding_window (or a plain split for 1x1/s1/p0) from `src`; returns the window stream
    (`taps` = k: one window row of k pixels per beat, SIMD = C)."""
    s = node.inp
    if k == 1 and stride == 1 and pad == 0:
        if simd == s.c:
            return src
        dst = p.stream("win", simd * s.bits)
        p.calls.append(f"cf::split_stream<{s.beat_bits}, {simd * s.bits}, {s.h * s.w}>({src}, {dst}, reps);")
        return dst
    if s.h + 2 * pad < k or s.w + 2 * pad < k:
        raise BuildError(f"{node.name}: kernel {k} larger than the padded {s.h}x{s.w} image")
    pad_name = f"{p.ident}_pad"
    p.table(f"static const {rom_ctype(s.beat_bits)} {pad_name} = {rom_literal(pad_word, s.beat_bits)};")
    if taps not in (1, k) or (taps > 1 and simd != s.c):
        raise BuildError(f"{node.name}: row taps {taps} need k = {k} taps and SIMD = C_in {s.c}")
    dst = p.stream("win", taps * simd * s.bits)
    targs = f", {taps}" if taps > 1 else ""
    p.calls.append(f"cf::sliding_window<{k}, {stride}, {pad}, {s.c}, {s.h}, {s.w}, {s.bits}, {simd}{targs}>"
                   f"({src}, {dst}, {pad_name}, reps);")
    return dst


def _lanes(p: NodePlan, lane_w: int, total_w: int) -> str:
    """The stream a PE-folded unit writes: `out` itself, or a chunk stream joined later."""
    return "out" if lane_w == total_w else p.stream("y", lane_w)


# --------------------------------------------------------------------------- run-time weights
# The loaders (hls/cf_wload.h) write the stream's words (the RTL ROM words, units.contents)
# into the HLS tables. Where the ROM holds a value in the RTL's domain (the xnor threshold on
# the popcount, the int8 dsp2 parameters of acc - 128*sum(w)) the loader converts it exactly,
# into a table wide enough for any value the ROM field can hold: a retrained model with the
# same signature (generator/hw/weights.py) loads into the same hardware.

def _fits64(node, what: str, lo: int, hi: int) -> int:
    b = signed_bits(lo, hi)
    if b > 64:
        raise BuildError(f"{node.name}: run-time {what} need {b} bits, more than the 64 a table holds")
    return b


def _rowsum_bits(kd: int) -> int:
    """Signed bits of a channel's weight sum (K int8 weights) in the dsp2 loader."""
    return signed_bits(-128 * kd, 128 * kd)


def _order_loads(p: NodePlan, up) -> None:
    """Sort the node's loader calls into the plan's memory order (the stream order,
    units.contents / weights.memories); every read-only memory needs exactly one."""
    roles = [m.role for m in up.memories if m.rom]
    have = dict(p.loads)
    if sorted(have) != sorted(roles) or len(have) != len(p.loads):
        raise BuildError(f"{p.name}: the HLS loader writes {sorted(have)}, the plan's memories are {roles}")
    p.loads = [have[r] for r in roles]


def _join(p: NodePlan, src: str, lane_w: int, total_w: int, beats: int) -> None:
    if src != "out":
        p.calls.append(f"cf::join_stream<{lane_w}, {total_w}, {beats}>({src}, out, reps);")


def plan_conv(node: ConvNode, ident: str, depth: int, runtime: bool = False) -> NodePlan:
    p = NodePlan(node, ident, depth, runtime)
    i, o = node.inp, node.out
    k, st, pad = node.k, node.stride, node.pad
    simd, pe = node.simd, node.pe
    up = units.plan(node)                       # legality, row taps, widener, cycles
    oh, ow = out_dim(i.h, k, st, pad), out_dim(i.w, k, st, pad)
    mw, mh = k * k * i.c, o.c
    w = np.asarray(node.weights)
    if node.matrix == "xnor":
        dot = f"cf::XnorDot<{simd}, {mw}, {node.acc_bits}>"
        wbits = 1
        ww = simd
    else:
        # the folding's multiplier choice: dsp2 = two products per DSP48 (IntDot MULT 1,
        # packed weights in the 25-bit pre-adder); the integers are the same
        dsp2 = getattr(node, "mult", "dsp") == "dsp2"
        hint = ", 1" if dsp2 else ""
        dot = (f"cf::IntDot<{simd}, {i.bits}, {'true' if i.kind == 'int' else 'false'}, 8, "
               f"{node.acc_bits}{hint}>")
        wbits = 8
        ww = 8 * simd
    p.max_width = max(p.max_width, ww)
    nf = mh // pe
    wname, aname = f"{ident}_weights", f"{ident}_act"
    if runtime:
        _conv_runtime(p, node, up, wname, aname, ww)
    else:
        words = pack_matrix(w, wbits, simd, pe)
        p.table(f"static const {rom_ctype(ww)} {wname}[{pe}][{(mw // simd) * nf}] = "
                + c_init(words, lambda x: rom_literal(x, ww)) + ";")
    if runtime:
        obits = 1 if node.act == "threshold" else o.bits
    elif node.act == "threshold":
        act_t = f"cf::ThresholdAct<{pe}, {nf}, {node.thr_bits}>"
        p.table(f"typedef {act_t} {aname}_t;\nstatic const {aname}_t {aname} = {{\n"
                f"  {c_init(per_lane(node.thresholds, pe), lambda x: srom_literal(x, node.thr_bits))},\n"
                f"  {c_init(lane_bits(np.asarray(node.direction) > 0, pe), lambda x: rom_literal(x, pe))}}};")
        obits = 1
    else:
        off_bits = _bits_of(node.offset)
        act_t = f"cf::ReluOffsetAct<{pe}, {nf}, {node.frac_bits}, {off_bits}, {o.bits}>"
        p.table(f"typedef {act_t} {aname}_t;\nstatic const {aname}_t {aname} = {{\n"
                f"  {c_init(per_lane(node.offset, pe), lambda x: srom_literal(x, off_bits))},\n"
                f"  {c_init(lane_bits(np.asarray(node.sign) > 0, pe), lambda x: rom_literal(x, pe))}}};")
        obits = o.bits
    p.partitions += [f"#pragma HLS ARRAY_PARTITION variable={wname} complete dim=1",
                     f"#pragma HLS ARRAY_PARTITION variable={aname}.{'thr' if node.act == 'threshold' else 'offset'}"
                     f" complete dim=1"]
    if runtime and getattr(node, "weight_mem", "auto") == "uram":
        p.partitions.append(f"#pragma HLS BIND_STORAGE variable={wname} type=ram_2p impl=uram")
    pad_word = up.window.pad_pixel
    rows = up.window.row_taps
    if up.widen is not None:
        # tap-parallel: whole pixels (rows = 1) or whole window rows of k pixels (rows = k)
        # from the window generator, gathered R beats per wide beat (mvau buffers the window
        # for its output folds: no replay needed here, NF = 1)
        wd = up.widen
        px = _window(p, node, "in", i.c, pad_word, k, st, pad, rows)
        win = p.stream("wide", wd.out_width)
        p.calls.append(f"cf::widen_taps<{wd.iw}, {wd.r}, {wd.sf}, 1, {oh * ow}>"
                       f"({px}, {win}, reps);")
    else:
        win = _window(p, node, "in", simd, pad_word, k, st, pad)
    y = _lanes(p, pe * obits, o.beat_bits)
    p.calls.append(f"cf::mvau<{mw}, {mh}, {simd}, {pe}, {oh * ow}, {dot}, {aname}_t>"
                   f"({win}, {y}, {wname}, {aname}, reps);")
    _join(p, y, pe * obits, o.beat_bits, oh * ow)
    p.summary = {"matrix": node.matrix, "act": node.act, "MW": mw, "MH": mh, "SIMD": simd, "PE": pe,
                 **_timing(up)}
    if up.widen is not None:
        p.summary["row_taps"] = rows
    return p


def _conv_runtime(p: NodePlan, node: ConvNode, up, wname: str, aname: str, ww: int) -> None:
    """The conv's tables as writable arrays and its loader calls (weights, then params)."""
    c = up.core
    pe, simd, sf, nf, kd, tw = c.pe, c.simd, c.sf, c.nf, c.kd, c.tw
    dsp2 = c.matrix == "int8" and c.dsp2
    rsb = _rowsum_bits(kd)
    p.table(f"// run-time weights: written by node_{p.ident}_load\n"
            f"static {rom_ctype(ww)} {wname}[{pe}][{sf * nf}];")
    if dsp2:
        p.load_locals += [f"ap_int<{rsb}> rowsum[{pe}][{nf}];  // each channel's weight sum (dsp2 parameters)",
                          "#pragma HLS ARRAY_PARTITION variable=rowsum complete dim=1"]
        p.load("weights", f"cf::load_weights_dsp2<{simd}, {pe}, {sf}, {nf}, {rsb}>(wgt, f, {wname}, rowsum);", ww)
    else:
        p.load("weights", f"cf::load_lanes<{ww}, {pe}, {sf * nf}>(wgt, f, {wname});", ww)
    vlo, vhi = -(1 << (tw - 1)), (1 << (tw - 1)) - 1     # a TW-bit ROM value
    if node.act == "threshold":
        if c.xnor:              # the ROM's popcount threshold v: thr = 2v - K
            mode, tb = 1, _fits64(node, "thresholds", 2 * vlo - kd, 2 * vhi - kd)
        elif dsp2:              # the ROM's threshold on acc - 128*S: thr = v + 128*S
            mode, tb = 2, _fits64(node, "thresholds", vlo - 128 * 128 * kd, vhi + 128 * 128 * kd)
        else:
            mode, tb = 0, tw
        p.table(f"typedef cf::ThresholdAct<{pe}, {nf}, {tb}> {aname}_t;\nstatic {aname}_t {aname};")
        if mode == 2:
            p.load("params", f"cf::load_thresholds_rs<{pe}, {nf}, {tw}, 2, {kd}, {rsb}>(wgt, f, {aname}, rowsum);",
                   tw + 1)
        else:
            p.load("params", f"cf::load_thresholds<{pe}, {nf}, {tw}, {mode}, {kd}>(wgt, f, {aname});", tw + 1)
    else:
        shift = 128 * 128 * kd * (1 << c.frac) if dsp2 else 0
        ob = _fits64(node, "offsets", vlo - shift, vhi + shift)
        p.table(f"typedef cf::ReluOffsetAct<{pe}, {nf}, {c.frac}, {ob}, {node.out.bits}> {aname}_t;\n"
                f"static {aname}_t {aname};")
        if dsp2:
            p.load("params", f"cf::load_offsets_rs<{pe}, {nf}, {tw}, {c.frac}, true, {rsb}>(wgt, f, {aname}, rowsum);",
                   tw + 1)
        else:
            p.load("params", f"cf::load_offsets<{pe}, {nf}, {tw}, {c.frac}>(wgt, f, {aname});", tw + 1)


def plan_maxpool(node: MaxPoolNode, ident: str, depth: int, runtime: bool = False) -> NodePlan:
    p = NodePlan(node, ident, depth, runtime)
    i, o = node.inp, node.out
    oh, ow = o.h, o.w
    up = units.plan(node)
    mask = up.core.invert                       # B bits per channel: golden.pool_mask
    iname = f"{ident}_mask"
    p.table(f"static const {rom_ctype(i.beat_bits)} {iname} = {rom_literal(mask, i.beat_bits)};")
    # Out-of-image taps = the mask: 0, the identity of the max, in the masked domain.
    win = _window(p, node, "in", i.c, mask, node.k, node.stride, node.pad)
    p.calls.append(f"cf::maxpool<{i.c}, {i.bits}, {node.k}, {oh * ow}>({win}, out, {iname}, reps);")
    p.summary = _timing(up)
    return p


def plan_avgpool(node: AvgPoolNode, ident: str, depth: int, runtime: bool = False) -> NodePlan:
    p = NodePlan(node, ident, depth, runtime)
    i, o = node.inp, node.out
    oh, ow = out_dim(i.h, node.k, node.stride, node.pad), out_dim(i.w, node.k, node.stride, node.pad)
    up = units.plan(node)                   # lanes (node.simd): channels summed per beat
    lanes, cf = up.core.simd, up.core.cf
    aname = f"{ident}_act"
    c = i.c
    # lane l of fold j is channel j*SIMD + l: the matrix unit's PE/NF layout
    if runtime and any(m.role == "thresholds" and m.rom for m in up.memories):
        # the ROM's {flag, value} lanes of TW+1 bits, compared with the sum as they are
        tw = up.core.tw
        p.table(f"// run-time weights: written by node_{ident}_load\n"
                f"typedef cf::ThresholdAct<{lanes}, {cf}, {tw}> {aname}_t;\nstatic {aname}_t {aname};")
        p.load("thresholds", f"cf::load_thresholds<{lanes}, {cf}, {tw}, 0, 0>(wgt, f, {aname});", tw + 1)
    else:
        # (with run-time weights only if the plan had no threshold memory)
        p.table(f"typedef cf::ThresholdAct<{lanes}, {cf}, {node.thr_bits}> {aname}_t;\n"
                f"static const {aname}_t {aname} = {{\n"
                f"  {c_init(per_lane(node.thresholds, lanes), lambda x: srom_literal(x, node.thr_bits))},\n"
                f"  {c_init(lane_bits(np.asarray(node.direction) > 0, lanes), lambda x: rom_literal(x, lanes))}}};")
    p.partitions.append(f"#pragma HLS ARRAY_PARTITION variable={aname}.thr complete dim=1")
    win = _window(p, node, "in", lanes, 0, node.k, node.stride, node.pad)
    p.calls.append(f"cf::avgpool_thr<{c}, {lanes}, {i.bits}, {'true' if i.kind == 'int' else 'false'}, "
                   f"{node.k}, {oh * ow}, {node.sum_bits}, {aname}_t>({win}, out, {aname}, reps);")
    p.summary = {"SIMD": lanes, **_timing(up)}
    return p


def plan_scalemac(node: ScaleMacNode, ident: str, depth: int, runtime: bool = False) -> NodePlan:
    p = NodePlan(node, ident, depth, runtime)
    i, o = node.inp, node.out
    n, simd, pe = node.n, node.simd, node.pe
    up = units.plan(node)                       # the folding's legality
    w = np.asarray(node.weights)
    mw = up.core.ci                             # the window: k*k*C_in, tap-major
    scales = units.scalemac.tiled_scales(node)  # the group scales repeated per tap
    bias_bits = _bits_of(node.bias)
    pname = f"{ident}_params"
    p.max_width = max(p.max_width, 8 * simd)
    if runtime:
        # the ROM's widths (the signature's): scales of SCW bits, biases of BW bits
        c = up.core
        p.table(f"// run-time weights: written by node_{ident}_load\n"
                f"typedef cf::ScaleMacParams<{mw}, {o.c}, {simd}, {pe}, {n}, 8, {c.scw}, {c.bw}> "
                f"{pname}_t;\nstatic {pname}_t {pname};")
        p.load("weights", f"cf::load_lanes<{8 * simd}, {pe}, {c.sf * c.nf}>(wgt, f, {pname}.weights);", 8 * simd)
        p.load("scales", f"cf::load_scales<{c.scw}, {c.gpc}, {c.cpg}, {c.sf}, {mw // n}>(wgt, f, {pname}.scales);",
               c.scw)
        p.load("bias", f"cf::load_signed_lanes<{c.bw}, {pe}, {c.nf}, {c.bw}>(wgt, f, {pname}.bias);", c.bw)
    else:
        words = pack_matrix(w, 8, simd, pe)
        p.table(f"typedef cf::ScaleMacParams<{mw}, {o.c}, {simd}, {pe}, {n}, 8, {node.scale_bits}, {bias_bits}> "
                f"{pname}_t;\nstatic const {pname}_t {pname} = {{\n"
                f"  {c_init(words, lambda x: rom_literal(x, 8 * simd))},\n"
                f"  {c_init([int(x) for x in scales], lambda x: rom_literal(x, node.scale_bits))},\n"
                f"  {c_init(per_lane(node.bias, pe), lambda x: srom_literal(x, bias_bits))}}};")
    p.partitions += [f"#pragma HLS ARRAY_PARTITION variable={pname}.weights complete dim=1",
                     f"#pragma HLS ARRAY_PARTITION variable={pname}.bias complete dim=1"]
    if runtime and getattr(node, "weight_mem", "auto") == "uram":
        p.partitions.append(f"#pragma HLS BIND_STORAGE variable={pname}.weights type=ram_2p impl=uram")
    if simd > n:
        p.partitions.append(f"#pragma HLS ARRAY_PARTITION variable={pname}.scales cyclic factor={simd // n} dim=1")
    # the scale MAC buffers one window for its output folds: no replay
    src = _window(p, node, "in", simd, 0, node.k, node.stride, 0)
    y = _lanes(p, pe * o.bits, o.beat_bits)
    p.calls.append(f"cf::scalemac<{o.h * o.w}, {i.bits}, {'true' if i.kind == 'int' else 'false'}, "
                   f"{node.group_bits}, {node.acc_bits}, {'true' if node.relu else 'false'}, {o.bits}, {pname}_t>"
                   f"({src}, {y}, {pname}, reps);")
    _join(p, y, pe * o.bits, o.beat_bits, o.h * o.w)
    p.summary = {"n": n, "k": node.k, "SIMD": simd, "PE": pe, "group_multiplies_per_output": mw // n,
                 **_timing(up)}
    return p


def plan_globalsum(node: GlobalSumNode, ident: str, depth: int, runtime: bool = False) -> NodePlan:
    p = NodePlan(node, ident, depth, runtime)
    i, o = node.inp, node.out
    p.calls.append(f"cf::global_sum<{i.c}, {i.bits}, {'true' if i.kind == 'int' else 'false'}, {i.h * i.w}, "
                   f"{o.bits}>(in, out, reps);")
    p.summary = _timing(units.plan(node))
    return p


def plan_resadd(node: ResAddNode, ident: str, depth: int, runtime: bool = False) -> NodePlan:
    p = NodePlan(node, ident, depth, runtime)
    up = units.plan(node)                       # lanes, widths, the shortcut FIFO depth
    c = up.core
    words = units.resadd.param_words(node, c)   # [C/SIMD, 3*SIMD]: ma, mb, bias per lane
    rom = next(m for m in up.memories if m.role == "params")
    ww = rom.width                              # 3*SIMD fields of PW bits, C/SIMD words
    if rom.depth != len(words):
        raise BuildError(f"{node.name}: the parameter ROM holds {rom.depth} words, the packing {len(words)}")
    pname = f"{ident}_params"
    if runtime:             # the ROM word is the HLS word
        p.table(f"// run-time weights: written by node_{ident}_load\n"
                f"typedef cf::ResAddParams<{c.c}, {c.simd}, {c.mw}, {c.bw}, {c.pw}> {pname}_t;\n"
                f"static {pname}_t {pname};")
        p.load("params", f"cf::load_words<{ww}, {c.cf}>(wgt, f, {pname}.words);", ww)
    else:
        p.table(f"typedef cf::ResAddParams<{c.c}, {c.simd}, {c.mw}, {c.bw}, {c.pw}> {pname}_t;\n"
                f"static const {pname}_t {pname} = {{\n"
                f"  {c_init([pack_values(w, c.pw) for w in words], lambda x: rom_literal(x, ww))}}};")
    p.in_b_w = node.inp_b.beat_bits
    p.max_width = max(p.max_width, p.in_b_w, ww)
    p.port_depths = [depth, c.skip]             # port b: the shortcut FIFO (the plan's depth, pixels)
    p.calls.append(f"cf::resadd<{up.out_beats}, {c.ab}, {'true' if c.asigned else 'false'}, {c.bb}, "
                   f"{'true' if c.bsigned else 'false'}, {c.zw}, {c.sh}, {c.ob}, {'true' if c.relu else 'false'}, "
                   f"{pname}_t>(in, in_b, out, {pname}, reps);")
    p.summary = {"SIMD": c.simd, "skip_fifo_depth": c.skip, **_timing(up)}
    return p


PLANNERS = {"conv": plan_conv, "maxpool": plan_maxpool, "avgpool": plan_avgpool, "scalemac": plan_scalemac,
            "globalsum": plan_globalsum, "resadd": plan_resadd}


def plan_node(node, ident: str, fifo_depth: int = DEFAULT_FIFO_DEPTH, runtime: bool = False) -> NodePlan:
    """The node's HLS plan; its IR fields are checked once, by ir.check_node (also run by
    Graph.validate for whole graphs), the folding by the unit plan. runtime: the tables are
    writable arrays filled by the node's load function (run-time weights)."""
    _check_stream(node.inp, f"{node.name} input")
    _check_stream(node.out, f"{node.name} output")
    if getattr(node, "inp_b", None) is not None:
        _check_stream(node.inp_b, f"{node.name} input b")
    check_node(node)
    try:
        planner = PLANNERS[node.kind]
    except KeyError:
        raise BuildError(f"{node.name}: the HLS backend has no unit for node kind {node.kind!r}") from None
    p = planner(node, ident, fifo_depth, runtime)
    if runtime:
        _order_loads(p, units.plan(node))
    return p


# --------------------------------------------------------------------------- rendering

def _env():
    import jinja2
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    env.globals["c_string"] = c_string
    env.filters.update(escape.filters())
    return env


def node_header(plan: NodePlan, env=None) -> str:
    """The C++ header of one node: its constant tables and `node_<ident>(in, out, reps)`."""
    env = env or _env()
    return env.get_template("node.h.j2").render(p=plan)


def _wire(graph: Graph, plans: list, fifo_depth: int) -> dict:
    """The streams of the dataflow top on the graph (a DAG): every node reads its sources'
    streams (`graph.sources`), a stream with two readers is forked (`cf::fork_stream`, one
    output stream per reader), and each stream feeding a port takes that port's depth (a
    residual add's shortcut input: its plan's shortcut FIFO, skip_depth rounded up). Sets each plan's in_streams, out_depth
    and fork; returns the graph input's {"depth", "fork"}. On a chain every stream is
    s_<previous> of fifo_depth, as before DAGs."""
    readers = graph.consumers()
    by_name = {p.name: p for p in plans}
    stream = {"": "s_input", **{p.name: f"s_{p.ident}" for p in plans}}
    ports: dict = {}
    depth: dict = {}
    forks: dict = {}
    for src, rs in readers.items():
        s = stream[src]
        if len(rs) <= 1:
            depth[src] = plans[rs[0][0]].port_depths[rs[0][1]] if rs else fifo_depth
            for i, port in rs:
                ports[(i, port)] = s
            continue
        label = by_name[src].name if src else "input"
        if len(rs) > 2:                         # Graph.validate refuses it first
            raise BuildError(f"the output of {label} is read by {len(rs)} nodes; a fork has two outputs")
        depth[src] = fifo_depth
        outs = []
        for k, (i, port) in enumerate(rs):
            fs = f"s{k}_{s[2:]}"                # s_<x> -> s0_<x>, s1_<x>: no other top name
            ports[(i, port)] = fs
            outs.append({"name": fs, "label": f"{label}.fork{k}", "depth": plans[i].port_depths[port],
                         "reader": plans[i].name, "port": port})
        forks[src] = {"src": s, "width": graph.stream(src).beat_bits,
                      "beats": graph.stream(src).h * graph.stream(src).w, "outs": outs, "label": label}
    for i, p in enumerate(plans):
        p.in_streams = [ports[(i, port)] for port in range(len(graph.sources(i)))]
        p.out_depth = depth[p.name]
        p.fork = forks.get(p.name)
    return {"depth": depth[""], "fork": forks.get("")}


def ap_int_max_w(width: int) -> int:
    return max(1024, int(math.ceil(width / 1024.0)) * 1024)


def _board_info(board) -> dict:
    """The template / manifest view of the board (generator/hw/boards.py resolves every default
    and checks the Tcl tokens: part, board_part, preset, hp_port)."""
    from ..hw.boards import as_board
    b = as_board(board)
    return {"name": b.name, "part": b.part, "family": b.family, "zynqmp": b.zynqmp,
            "clock_mhz": float(b.clock_mhz), "clock_ns": b.clock_ns, "board_part": b.board_part,
            "preset": b.preset, "dma_data_width": b.dma_data_width, "hp_port": b.hp_port,
            "hp_gp_index": b.hp_gp_index}


def _weight_memories(graph: Graph, plans: list) -> list:
    """The weight stream's memories (generator/hw/weights.py, the format's owner), checked
    against the loader calls of the plans: one per memory, node by node, in stream order."""
    from ..hw import weights
    mems = weights.memories(graph)
    per_node: dict = {}
    for m in mems:
        per_node.setdefault(m.node, []).append(m)
    for p in plans:
        if len(per_node.get(p.name, [])) != len(p.loads):
            raise BuildError(f"{p.name}: the weight stream has {len(per_node.get(p.name, []))} memories of "
                             f"this node, the HLS loader {len(p.loads)}")
    return mems


def render(graph: Graph, out_dir, board=None, fifo_depth: int = DEFAULT_FIFO_DEPTH) -> Path:
    """Write out_dir/hls/ (HLS project) and out_dir/vivado/bd.tcl for `graph` on `board`.

    `board`: dict with at least name, part, family, clock_mhz and vivado_board_part (or
    preset); missing keys take PYNQ-Z2-like defaults. Returns out_dir/hls.
    """
    if not graph.nodes:
        raise BuildError("the graph has no nodes")
    out_dir = Path(out_dir)
    hls_dir = out_dir / "hls"
    for sub in ("include", "sim", "src/nodes", "tb"):
        (hls_dir / sub).mkdir(parents=True, exist_ok=True)
    graph.validate()

    top = names.top_name(graph.name)
    idents = names.node_idents(graph)
    runtime = bool(getattr(graph, "runtime_weights", False))
    plans = [plan_node(n, ident, fifo_depth, runtime) for n, ident in zip(graph.nodes, idents)]
    wmems = _weight_memories(graph, plans) if runtime else []
    wiring = _wire(graph, plans, fifo_depth)
    info = _board_info(board)
    inp, outp = graph.input, graph.output
    ctx = {
        "graph": graph,
        "top": top,
        "plans": plans,
        "board": info,
        "fifo_depth": fifo_depth,
        "in_bits": inp.beat_bits, "in_axi": axi_bits(inp.beat_bits), "in_beats": inp.h * inp.w,
        "out_bits": outp.beat_bits, "out_axi": axi_bits(outp.beat_bits), "out_beats": outp.h * outp.w,
        "last": plans[-1],
        "input_depth": wiring["depth"], "input_fork": wiring["fork"],
        "runtime": runtime,
        "weight_words": sum(m.words for m in wmems), "weight_mems": len(wmems),
        "loaders": [p for p in plans if p.loads],
    }
    ctx["dma_in_bits"], ctx["dma_out_bits"] = dma_bits(ctx["in_axi"]), dma_bits(ctx["out_axi"])
    max_w = max([p.max_width for p in plans] + [ctx["in_axi"], ctx["out_axi"]])
    ctx["ap_int_max_w"] = ap_int_max_w(max_w)
    if ctx["ap_int_max_w"] > 32768:
        raise BuildError(f"a stream of {max_w} bits exceeds ap_int's 32768-bit limit")

    # header library and simulation shims (copied: the project is self-contained)
    for h in sorted(HLS_LIB.glob("*.h")):
        shutil.copy2(h, hls_dir / "include" / h.name)
    for h in sorted((HLS_LIB / "sim").glob("*.h")):
        shutil.copy2(h, hls_dir / "sim" / h.name)

    env = _env()
    stale = {p.name for p in (hls_dir / "src" / "nodes").glob("*.h")}
    for p in plans:
        _write(hls_dir / "src" / "nodes" / f"{p.ident}.h", node_header(p, env))
        stale.discard(f"{p.ident}.h")
    for name in stale:
        (hls_dir / "src" / "nodes" / name).unlink()
    files = {
        f"src/{top}.h": "top.h.j2",
        f"src/{top}.cpp": "top.cpp.j2",
        f"src/{top}_trace.h": "trace.h.j2",
        "tb/tb.cpp": "tb.cpp.j2",
        "project.tcl": "project.tcl.j2",
        "csim.tcl": "csim.tcl.j2",
        "csynth.tcl": "csynth.tcl.j2",
        "cosim.tcl": "cosim.tcl.j2",
        "export.tcl": "export.tcl.j2",
        "run_hls.tcl": "run_hls.tcl.j2",
        "run_hls.sh": "run_hls.sh.j2",
    }
    for rel, tpl in files.items():
        _write(hls_dir / rel, env.get_template(tpl).render(**ctx))
    (hls_dir / "run_hls.sh").chmod(0o755)
    (out_dir / "vivado").mkdir(parents=True, exist_ok=True)
    _write(out_dir / "vivado" / "bd.tcl", env.get_template("bd.tcl.j2").render(**ctx))

    manifest = {
        "top": top,
        "graph": graph.name,
        "board": info,
        "ap_int_max_w": ctx["ap_int_max_w"],
        "fifo_depth": fifo_depth,
        "sources": [f"src/{top}.cpp"],
        "testbench": ["tb/tb.cpp"],
        "include_dirs": ["include", "src"],
        "sim_include_dirs": ["sim"],
        "input": {"bits": inp.beat_bits, "axi_bits": ctx["in_axi"], "beats_per_frame": inp.h * inp.w,
                  "shape": [inp.h, inp.w, inp.c], "kind": inp.kind, "value_bits": inp.bits},
        "output": {"bits": outp.beat_bits, "axi_bits": ctx["out_axi"], "beats_per_frame": outp.h * outp.w,
                   "shape": [outp.h, outp.w, outp.c], "kind": outp.kind, "value_bits": outp.bits,
                   "node": plans[-1].name},
        "ports": {"in": "in_stream", "out": "out_stream", "control": "s_axi_control", "reps": "reps"},
        "nodes": [{"name": p.name, "ident": p.ident, "kind": p.kind, "out_bits": p.out_w,
                   "out_beats_per_frame": p.out_beats, "channels": p.node.out.c, "value_bits": p.node.out.bits,
                   **p.summary} for p in plans],
    }
    if not graph.is_chain:                      # a DAG: each node's sources ("" = the graph input)
        for i, nd in enumerate(manifest["nodes"]):
            nd["inputs"] = graph.sources(i)
    if runtime:                                 # the weight port (docs/WEIGHTS.md)
        manifest["runtime_weights"] = True
        manifest["ports"].update({"weights": "wgt_stream", "status": "wstat_stream", "mode": "mode"})
        manifest["weights"] = {
            "words": ctx["weight_words"], "file": "weights/weights.hex", "modes": {"load": 1, "run": 0},
            "memories": [{"index": m.index, "node": m.node, "role": m.role, "depth": m.depth,
                          "width": m.width, "offset": m.offset, "words": m.words} for m in wmems]}
    _write(hls_dir / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return hls_dir


def _write(path: Path, text: str) -> None:
    """Write only when the content changed (keeps compile caches and timestamps stable)."""
    path = Path(path)
    if path.exists() and path.read_text() == text:
        return
    path.write_text(text)
