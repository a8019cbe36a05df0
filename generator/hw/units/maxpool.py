"""Binary max-pool unit: a MaxPoolNode as cf_swg (pads with invert) -> cf_maxpool (rtl/),
sliding_window -> maxpool_bin (hls/), golden.maxpool (generator/hw/golden.py). One whole pixel
(all channels) per beat: PE = SIMD = 1."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
    invert: int             # bit c: channel c pools with AND (an inverted OR)
    fd: int


def plan(node: MaxPoolNode) -> Plan:
    s, o = node.inp, node.out
    err = folding_error(node)
    check(err is None, f"node {node.name}: {err}")
    inv = np.zeros(s.c, np.int64) if node.invert is None else np.asarray(node.invert).astype(np.int64)
    invv = int(sum(int(b & 1) << c for c, b in enumerate(inv)))
    kk = node.k * node.k
    core = MaxPool(s.c, kk, invv, POOL_FIFO_DEPTH)
    # out-of-image taps = invert: the identity of OR in the inverted domain
    win = window(s, node.k, node.stride, node.pad, s.c, 1, invv, 1, node.name)
    return Plan(node.name, KIND, pixel_rate_cycles(o.h * o.w, kk, s.h * s.w), float(kk),
                PIPE["swg"] + PIPE["pool"], win, None, core, (), core.fd, o.beat_bits,
                o.h * o.w, s.c)
