"""Average-pool + threshold unit: an AvgPoolNode as cf_swg (pads with 0) -> cf_avgpool
(rtl/), sliding_window -> avgpool_thr (hls/), golden.avgpool (generator/hw/golden.py).

Folding: SIMD (the lanes: channels summed per beat) divides C; PE = 1. With SIMD < C the
window generator emits each tap in C/SIMD chunks and the partial sums of all channels sit in
a C/SIMD-entry register file. The folding gives a pool the fewest lanes that keep it within
half the slowest other node (`choose_lanes`), so it never sets the interval.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..ir import AvgPoolNode, signed_bits
from .common import PIPE, POOL_FIFO_DEPTH, Memory, Plan, check, divisors, illegal, pixel_rate_cycles, window

KIND = "avgpool"


def legal_pe(node) -> list[int]:
    return [1]


def legal_simd(node: AvgPoolNode) -> list[int]:
    return divisors(node.inp.c)


def folding_error(node: AvgPoolNode) -> str | None:
    if node.pe != 1:
        return f"an avgpool node has no PE folding; PE must be 1 (got PE={node.pe})"
    return illegal("SIMD", node.simd, legal_simd(node),
                   f"(channels per beat) must divide its {node.inp.c} channels")


def _cycles(node: AvgPoolNode, simd: int) -> int:
    o, s = node.out, node.inp
    return pixel_rate_cycles(o.h * o.w, node.k * node.k * (s.c // simd), s.h * s.w)


def choose_lanes(node: AvgPoolNode, budget: int) -> int:
    """The fewest lanes (dividing C) whose cycles stay within `budget`; all C without one.
    A k = 1 pool (the threshold of a residual stream) takes all C: whole pixels need no
    window generator and no partial sums, only C comparators."""
    if node.k == 1 and node.stride == 1 and node.pad == 0:
        return node.inp.c
    for simd in legal_simd(node):
        if _cycles(node, simd) <= budget:
            return simd
    return node.inp.c


@dataclass(frozen=True)
class AvgPool:
    """cf_avgpool / avgpool_thr parameters; swi and cmw mirror cf_avgpool.v's localparams."""
    c: int
    simd: int
    ib: int
    isigned: bool
    kk: int
    sw: int                 # sum bits (signed) that hold every reachable sum
    tw: int                 # threshold bits (signed)
    fd: int

    @property
    def cf(self) -> int:
        return self.c // self.simd

    @property
    def swi(self) -> int:
        return max(self.sw, self.ib) + 1


def _range(kind: str, bits: int) -> tuple[int, int]:
    if kind == "uint":
        return 0, (1 << bits) - 1
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def thresholds(node: AvgPoolNode) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Thresholds clipped to the reachable sums, direction flags, SW and TW."""
    s = node.inp
    kk = node.k * node.k
    lo, hi = _range(s.kind, s.bits)
    smin, smax = min(0, lo * kk), hi * kk
    sw = max(signed_bits(smin, smax), int(node.sum_bits or 0))
    thr = np.clip(np.asarray(node.thresholds).astype(np.int64), smin - 1, smax + 1)
    flag = (np.asarray(node.direction).astype(np.int64) > 0).astype(np.int64)
    return thr, flag, sw, max(signed_bits(int(thr.min()), int(thr.max())), int(node.param_bits))


def plan(node: AvgPoolNode) -> Plan:
    s, o = node.inp, node.out
    err = folding_error(node)
    check(err is None, f"node {node.name}: {err}")
    _, _, sw, tw = thresholds(node)
    kk = node.k * node.k
    core = AvgPool(s.c, node.simd, s.bits, s.kind == "int", kk, sw, tw, POOL_FIFO_DEPTH)
    win = window(s, node.k, node.stride, node.pad, node.simd, 1, 0, 1, node.name)
    if win.can_wire:                # a threshold of whole pixels: cf_avgpool reads the stream
        win = replace(win, bypass=True)
    # one tap per pixel (k = 1) keeps no partial sums: the sum is the value; CF = 1 keeps
    # them in the lanes' registers. The thresholds are a CF-word memory even at CF = 1 (one
    # word: constants in a ROM build, registers the weight port writes in a run-time one)
    mems = ((Memory("partial_sums", core.cf, core.simd * core.swi, rom=False, sync_read=False),)
            if core.cf > 1 and kk > 1 else ()) + \
        (Memory("thresholds", core.cf, core.simd * (tw + 1), rom=True, sync_read=False),)
    pipe = PIPE["pool"] + (0 if win.wire else PIPE["swg"])
    return Plan(node.name, KIND, _cycles(node, node.simd), float(kk * core.cf),
                pipe, win, None, core, mems, core.fd, o.beat_bits, o.h * o.w, node.simd)


def threshold_words(node: AvgPoolNode, core: AvgPool) -> np.ndarray:
    """[C/SIMD, SIMD] {flag, value} lanes of TW+1 bits: word j lane l = channel j*SIMD + l."""
    thr, flag, _, tw = thresholds(node)
    return ((thr & ((1 << tw) - 1)) | (flag << tw)).reshape(core.cf, core.simd)


def contents(node: AvgPoolNode, core: AvgPool) -> dict:
    """{memory role: (fields [depth, n], field bits)} of the plan's read-only memories."""
    return {"thresholds": (threshold_words(node, core), core.tw + 1)}
