"""Residual-add unit: a ResAddNode as cf_resadd (rtl/), resadd (hls/), golden.resadd
(generator/hw/golden.py). It joins the body stream (a) and the shortcut stream (b, behind
a FIFO of skip_depth pixels) per channel, requantizing both to the residual stream.

Folding: SIMD (the lanes: channels per cycle, two multiplies each) divides C; PE = 1. With
SIMD < C the unit spends C/SIMD cycles per pixel, reading the per-channel constants from a
C/SIMD-word ROM. Its lanes cost DSPs, so the folding prices them like a matrix unit's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import ResAddNode, next_pow2
from .common import PIPE, POOL_FIFO_DEPTH, Memory, Plan, check, divisors, illegal

KIND = "resadd"


def legal_pe(node) -> list[int]:
    return [1]


def legal_simd(node: ResAddNode) -> list[int]:
    return divisors(node.inp.c)


def folding_error(node: ResAddNode) -> str | None:
    if node.pe != 1:
        return f"a resadd node has no PE folding; PE must be 1 (got PE={node.pe})"
    return illegal("SIMD", node.simd, legal_simd(node),
                   f"(channels per cycle) must divide its {node.inp.c} channels")


def _cycles(node: ResAddNode, simd: int) -> int:
    s = node.inp
    return s.h * s.w * (s.c // simd)


@dataclass(frozen=True)
class ResAdd:
    """cf_resadd / resadd parameters."""
    c: int
    simd: int
    ab: int                 # a (body) bits per channel
    asigned: bool
    bb: int                 # b (shortcut) bits per channel
    bsigned: bool
    mw: int                 # signed multiplier width (ma, mb)
    bw: int                 # signed bias width
    zw: int                 # signed sum width
    sh: int                 # right shift (floor)
    ob: int                 # output bits (signed)
    relu: bool
    fd: int                 # output FIFO depth
    skip: int               # shortcut FIFO depth (pixels): node.skip_depth, a power of two

    @property
    def cf(self) -> int:
        return self.c // self.simd

    @property
    def pw(self) -> int:
        """Width of each field of a parameter word: ma, mb and bias share one."""
        return max(self.mw, self.bw)


def plan(node: ResAddNode) -> Plan:
    s, b, o = node.inp, node.inp_b, node.out
    err = folding_error(node)
    check(err is None, f"node {node.name}: {err}")
    check(node.skip_depth >= 1, f"node {node.name}: the shortcut FIFO is not sized yet "
                                f"(perf.size_skip_fifos, run by the folding)")
    # cf_fifo depths are 1 or powers of two (LUT RAM comes in 32/64-deep pieces, block RAM
    # in powers of two)
    skip = next_pow2(node.skip_depth)
    core = ResAdd(s.c, node.simd, s.bits, s.kind == "int", b.bits, b.kind == "int",
                  node.m_bits, node.bias_bits, node.acc_bits, node.shift, o.bits, bool(node.relu),
                  POOL_FIFO_DEPTH, skip)
    mems = (Memory("params", core.cf, core.simd * 3 * core.pw, rom=True, sync_read=False),
            Memory("skip_fifo", skip, b.beat_bits, rom=False, sync_read=False))
    return Plan(node.name, KIND, _cycles(node, node.simd), float(core.cf), PIPE["resadd"],
                None, None, core, mems, core.fd, o.beat_bits, o.h * o.w, node.simd)


def param_words(node: ResAddNode, core: ResAdd) -> np.ndarray:
    """[C/SIMD, 3*SIMD] fields of PW bits: word j, lane l (channel j*SIMD + l) holds
    ma at field 3l, mb at 3l+1, bias at 3l+2 (two's complement)."""
    f = np.stack([np.asarray(node.ma, np.int64), np.asarray(node.mb, np.int64),
                  np.asarray(node.bias, np.int64)], axis=1)          # [C, 3]
    return f.reshape(core.cf, core.simd * 3)


def contents(node: ResAddNode, core: ResAdd) -> dict:
    """{memory role: (fields [depth, n], field bits)} of the plan's read-only memories."""
    return {"params": (param_words(node, core), core.pw)}
