"""Convolution (and fully-connected) unit: a ConvNode as cf_swg [-> cf_widen] -> cf_mvu
(rtl/), sliding_window [-> widen_taps] -> mvau (hls/), golden.conv (generator/hw/golden.py).

Folding: PE divides C_out; SIMD divides C_in (channel chunks of one tap) or is m*C_in with
m dividing k*k (tap-parallel: m whole taps per beat, gathered by the widener).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import pipeline
from ..ir import ConvNode, clog2, signed_bits
from .common import PIPE, Memory, Plan, Widen, check, divisors, illegal, in_block_ram, out_fifo_depth, pixel_rate_cycles, replicate, rom_block, window

KIND = "conv"
#: int8 multiplier styles both backends implement: 'dsp' one product per DSP48 (cf_mvu
#: MULT 0), 'dsp2' two products of neighbouring lanes per DSP48 (MULT 1, docs/RTL.md).
#: The cost model also prices 'lut' (LUT multipliers), which no backend builds.
MULT_STYLES = ("dsp", "dsp2")


def legal_pe(node: ConvNode) -> list[int]:
    return divisors(node.out.c)


def legal_simd(node: ConvNode) -> list[int]:
    return divisors(node.inp.c) + [m * node.inp.c for m in divisors(node.k * node.k)[1:]]


def folding_error(node: ConvNode) -> str | None:
    """Why the node's PE/SIMD is illegal (None when legal)."""
    taps = (f" or be m*{node.inp.c} with m dividing k*k={node.k * node.k} (m taps per cycle)"
            if node.k > 1 else "")
    return (illegal("PE", node.pe, legal_pe(node), f"must divide its {node.out.c} output channels")
            or illegal("SIMD", node.simd, legal_simd(node),
                       f"must divide its {node.inp.c} input channels{taps}"))


def tap_parallel(node: ConvNode) -> bool:
    """SIMD = m*C_in (m > 1 whole taps per beat): the window generator emits whole pixels
    (or window rows), the widener gathers m taps per beat."""
    return node.simd > node.inp.c


def row_taps(node: ConvNode) -> int:
    """Window-row taps per window-generator beat of a tap-parallel convolution: k when its
    m = SIMD / C_in taps per beat are whole window rows (m a multiple of k) and whole pixels
    (k*k beats per window) would be slower than the replay (NF*SF beats), else 1: row taps
    cost k copies of the line buffer."""
    if not tap_parallel(node) or node.k < 2:
        return 1
    k, sf, nf = node.k, node.K // node.simd, node.out.c // node.pe
    return k if (node.simd // node.inp.c) % k == 0 and k * k > nf * sf else 1


@dataclass(frozen=True)
class Matrix:
    """cf_mvu / mvau: PE x SIMD dot products, accumulators, activation. aw/tw/frac/ob are the
    RTL parameters AW/TW/FRAC/OB; cw/dw mirror cf_mvu.v's localparams CW/DW."""
    matrix: str             # 'xnor' | 'int8'
    act: str                # 'threshold' | 'relu_offset'
    simd: int
    pe: int
    kd: int                 # K = k*k*C_in
    co: int
    ob: int                 # output bits per channel
    aw: int                 # accumulator bits (signed) that hold every reachable value
    tw: int                 # parameter value bits (threshold / offset, signed)
    frac: int               # relu_offset: fractional bits of the offset
    fd: int                 # output FIFO depth
    mult: str               # int8: 'dsp' | 'dsp2' | 'lut' (xnor: 'none')
    in_bits: int
    pipe: int = 0           # cf_mvu PIPE: 1 = read register, 2 = + partial popcounts
    dg: int = 4             # cf_mvu DG: dsp2 products per DSP chain

    @property
    def stages(self) -> int:
        """Cycles PIPE adds to the unit's pipeline: the read register (PIPE >= 1) and, for an
        xnor popcount wider than PCH bits, the partial-count register (PIPE 2)."""
        return int(self.pipe >= 1) + int(self.pipe >= 2 and self.xnor and self.simd > pipeline.PCH)

    @property
    def partial_counts(self) -> int:
        """Registered partial popcounts per PE (PIPE 2 stage P), 0 without that stage."""
        return -(-self.simd // pipeline.PCH) if self.stages == 2 else 0

    @property
    def sf(self) -> int:
        return self.kd // self.simd

    @property
    def nf(self) -> int:
        return self.co // self.pe

    @property
    def xnor(self) -> bool:
        return self.matrix == "xnor"

    @property
    def wbits(self) -> int:
        return 1 if self.xnor else 8

    @property
    def dw(self) -> int:
        return clog2(self.simd + 1) + (0 if self.xnor else 17)

    @property
    def cw(self) -> int:
        return (clog2(self.kd + 1) if self.xnor else max(self.aw, self.dw)) + 1

    @property
    def dsp2(self) -> bool:
        return self.mult == "dsp2"


def _acc_range(w: np.ndarray, xnor: bool, kd: int) -> tuple[int, int]:
    if xnor:
        return -kd, kd
    pos = np.where(w > 0, w, 0).sum(axis=1) * 255
    neg = np.where(w < 0, w, 0).sum(axis=1) * 255
    return int(neg.min()), int(pos.max())


def parameters(node: ConvNode) -> dict:
    """The activation parameters as cf_mvu stores them, per output channel: value and flag
    ({flag, value} lanes of TW+1 bits), the accumulator and value widths. A dsp2 matrix
    accumulates acc - 128 * sum(w) (the pixels enter as x - 128): the constant goes into the
    parameter. (The IR fields themselves are checked once, by ir.check_node.)"""
    xnor = node.matrix == "xnor"
    o = node.out
    kd = node.K
    w = np.asarray(node.weights).astype(np.int64).reshape(o.c, kd)
    dsp2 = not xnor and node.mult == "dsp2"
    acc_lo, acc_hi = _acc_range(w, xnor, kd)
    aw = max(signed_bits(acc_lo, acc_hi), int(node.acc_bits or 0))
    if dsp2:
        check(int(w.min()) >= -127 and int(w.max()) <= 127,
              f"{node.name}: dsp2 multipliers need int8 weights in [-127, 127]")
        pos = np.where(w > 0, w, 0).sum(axis=1)
        neg = np.where(w < 0, w, 0).sum(axis=1)
        aw = max(aw, signed_bits(int((127 * neg - 128 * pos).min()),
                                 int((127 * pos - 128 * neg).max())))
    frac, ob = 0, 1
    if node.act == "threshold":
        thr = np.asarray(node.thresholds).astype(np.int64)
        d = np.asarray(node.direction).astype(np.int64)
        if xnor:
            # acc = 2*pc - K: acc >= t <=> pc >= ceil((t+K)/2); acc <= t <=> pc <= floor((t+K)/2)
            val = np.clip(np.where(d > 0, -((-(thr + kd)) // 2), (thr + kd) // 2), -1, kd + 1)
        else:
            lo = np.where(w < 0, w, 0).sum(axis=1) * 255
            hi = np.where(w > 0, w, 0).sum(axis=1) * 255
            val = np.clip(thr, lo - 1, hi + 1)
        flag = (d > 0).astype(np.int64)
        tw = signed_bits(int(val.min()), int(val.max()))
    else:
        off = np.asarray(node.offset).astype(np.int64)
        sgn = np.asarray(node.sign).astype(np.int64)
        val, flag = off, (sgn > 0).astype(np.int64)
        tw = signed_bits(int(min(off.min(), 0)), int(max(off.max(), 0)))
        frac, ob = int(node.frac_bits), o.bits
        top = int(np.max(np.maximum(sgn * acc_hi, sgn * acc_lo) * (1 << frac) + off))
        room = (1 << (ob - (1 if o.kind == "int" else 0))) - 1
        check(top <= room, f"{node.name}: relu_offset output reaches {top}, "
              f"more than the {o.kind}{ob} stream holds")
    if dsp2:
        shift = 128 * w.sum(axis=1)
        val = val - shift if node.act == "threshold" else val + sgn * shift * (1 << frac)
        tw = signed_bits(int(min(val.min(), 0)), int(max(val.max(), 0)))
    tw = max(tw, int(node.param_bits))
    return {"aw": aw, "tw": tw, "frac": frac, "ob": ob, "value": val, "flag": flag}


def _weights_in_bram(node: ConvNode) -> bool:
    kd, pe, simd = node.K, node.pe, node.simd
    nw, width = (kd // simd) * (node.out.c // pe), pe * simd * (1 if node.matrix == "xnor" else 8)
    return in_block_ram(nw, width, block=rom_block(nw, width))


def choose_pipe(node: ConvNode, clock_mhz: float | None) -> int:
    """cf_mvu PIPE for the node at its folding and the target clock (generator/hw/pipeline.py:
    the fewest stages whose estimated dot-product path fits the period)."""
    return pipeline.mvu_pipe(node.matrix, node.simd, _weights_in_bram(node), clock_mhz)


def choose_dsp_group(node: ConvNode, clock_mhz: float | None) -> int:
    """cf_mvu DG (dsp2 products per DSP chain) for the target clock (generator/hw/pipeline.py)."""
    return pipeline.dsp2_group(clock_mhz)


def meets_clock(node: ConvNode, clock_mhz: float | None) -> bool:
    """Whether the node's dot product at its folding and pipelining is estimated to fit the
    period (the folding prefers foldings that do)."""
    if node.matrix == "int8" and node.mult == "dsp2":
        return pipeline.dsp2_path_ns(node.dsp_group) <= pipeline.period_ns(clock_mhz)
    if node.matrix == "int8" and node.mult == "dsp":
        return pipeline.dsp_path_ns(node.simd) <= pipeline.period_ns(clock_mhz)
    return pipeline.mvu_meets(node.matrix, node.simd, _weights_in_bram(node), node.pipe,
                              clock_mhz)


def plan(node: ConvNode) -> Plan:
    check(node.pe >= 1 and node.simd >= 1, f"{node.name}: PE and SIMD must be positive")
    check(node.pipe in range(pipeline.MAX_PIPE + 1),
          f"{node.name}: pipe {node.pipe!r:.20} must be 0 .. {pipeline.MAX_PIPE}")
    check(node.dsp_group in pipeline.DSP2_GROUPS,
          f"{node.name}: dsp_group {node.dsp_group!r:.20} must be one of {pipeline.DSP2_GROUPS}")
    err = folding_error(node)
    check(err is None, f"node {node.name}: {err}")
    s, o = node.inp, node.out
    pe, simd = node.pe, node.simd
    sf, nf = node.K // simd, o.c // pe
    xnor = node.matrix == "xnor"
    p = parameters(node)
    mult = "none" if xnor else (node.mult or "dsp")
    core = Matrix(node.matrix, node.act, simd, pe, node.K, o.c, p["ob"], p["aw"], p["tw"],
                  p["frac"], out_fifo_depth(o.c * p["ob"], sf * nf), mult, s.bits,
                  int(node.pipe), int(node.dsp_group))
    pad = replicate(node.pad_value, s.c, s.bits)
    pipe = PIPE["swg"] + PIPE["mvu"] + (PIPE["dsp2"] if core.dsp2 else 0) + core.stages
    if tap_parallel(node):
        rt = row_taps(node)
        win = window(s, node.k, node.stride, node.pad, s.c, 1, pad, rt, node.name)
        wid = Widen(rt * s.beat_bits, (simd // s.c) // rt, sf, nf)
        per_pixel = wid.window_cycles()
        # the window is collected before it is replayed: that overlaps the previous
        # window's replay, except on the last window of an idle pipeline
        pipe += PIPE["widen"] + min(wid.in_beats, nf * sf)
    else:
        win = window(s, node.k, node.stride, node.pad, simd, nf, pad, 1, node.name)
        wid, per_pixel = None, float(sf * nf)
    mems = (Memory("weights", nf * sf, pe * simd * core.wbits, rom=True,
                   block=rom_block(nf * sf, pe * simd * core.wbits)),
            Memory("params", nf, pe * (core.tw + 1), rom=True))
    return Plan(node.name, KIND, pixel_rate_cycles(o.h * o.w, per_pixel, s.h * s.w), per_pixel,
                pipe, win, wid, core, mems, core.fd, o.beat_bits, o.h * o.w, pe)


def weight_words(node: ConvNode, core: Matrix) -> np.ndarray:
    """Weight memory contents [NF*SF, PE*SIMD]: word nf*SF + sf, lane p, element i =
    w[nf*PE + p, sf*SIMD + i]; dsp2: lane 2j+1 holds w_hi - (w_lo < 0), so the DSP A port
    is the plain concatenation {w_hi, sign-extended w_lo} (docs/RTL.md)."""
    pe, simd, sf, nf = core.pe, core.simd, core.sf, core.nf
    w = np.asarray(node.weights).astype(np.int64).reshape(core.co, core.kd)
    wq = w.reshape(nf, pe, sf, simd).transpose(0, 2, 1, 3).reshape(nf * sf, pe, simd).copy()
    if core.dsp2:
        npr = pe // 2
        wq[:, 1:2 * npr:2, :] -= (wq[:, 0:2 * npr:2, :] < 0)
    return wq.reshape(nf * sf, pe * simd)


def param_words(node: ConvNode, core: Matrix) -> np.ndarray:
    """Parameter memory contents [NF, PE] of {flag, value} lanes (TW+1 bits each)."""
    p = parameters(node)
    lanes = (p["value"] & ((1 << core.tw) - 1)) | (p["flag"] << core.tw)
    return lanes.reshape(core.nf, core.pe)


def contents(node: ConvNode, core: Matrix) -> dict:
    """{memory role: (fields [depth, n], field bits)} of the plan's read-only memories."""
    return {"weights": (weight_words(node, core), core.wbits),
            "params": (param_words(node, core), core.tw + 1)}
