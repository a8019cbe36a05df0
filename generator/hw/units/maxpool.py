"""Max-pool unit: a MaxPoolNode as cf_swg (pads with the mask) -> cf_maxpool (rtl/),
sliding_window -> maxpool (hls/), golden.maxpool (generator/hw/golden.py). One whole pixel
(all channels) per beat: PE = SIMD = 1. Bit streams reduce with OR (AND where inverted);
int/uint streams (the R stream before a scale MAC) with a B-bit unsigned max per channel in
the domain x ^ mask (golden.pool_mask), whose identity 0 is what out-of-image taps hold."""

from __future__ import annotations

from dataclasses import dataclass

from ..golden import pool_mask
from ..ir import MaxPoolNode
from .common import PIPE, POOL_FIFO_DEPTH, Plan, check, pixel_rate_cycles, window

KIND = "maxpool"


def legal_pe(node) -> list[int]:
    return [1]


def legal_simd(node) -> list[int]:
    return [1]


def folding_error(node) -> str | None:
    if node.pe != 1 or node.simd != 1:
        return (f"a {node.kind} node takes one whole pixel per cycle; PE and SIMD must be 1 "
                f"(got PE={node.pe}, SIMD={node.simd})")
    return None


@dataclass(frozen=True)
class MaxPool:
    c: int
    kk: int
    invert: int             # C*B bits, channel c at [c*B, (c+1)*B): golden.pool_mask
    fd: int
    b: int = 1              # bits per channel (1: OR/AND of bits)


def plan(node: MaxPoolNode) -> Plan:
    s, o = node.inp, node.out
    err = folding_error(node)
    check(err is None, f"node {node.name}: {err}")
    invv = int(sum(int(m) << (c * s.bits) for c, m in enumerate(pool_mask(node))))
    kk = node.k * node.k
    core = MaxPool(s.c, kk, invv, POOL_FIFO_DEPTH, s.bits)
    # out-of-image taps = the mask: the identity 0 of the max in the masked domain
    win = window(s, node.k, node.stride, node.pad, s.c, 1, invv, 1, node.name)
    return Plan(node.name, KIND, pixel_rate_cycles(o.h * o.w, kk, s.h * s.w), float(kk),
                PIPE["swg"] + PIPE["pool"], win, None, core, (), core.fd, o.beat_bits,
                o.h * o.w, s.c)


def contents(node, core) -> dict:
    """No memories with contents (the mask is a parameter)."""
    return {}
