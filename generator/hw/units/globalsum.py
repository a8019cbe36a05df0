"""Global-sum unit (global average pool, divisor folded into the scale): a GlobalSumNode as
cf_globalsum (rtl/), global_sum (hls/), golden.globalsum (generator/hw/golden.py). One whole
pixel per beat: PE = SIMD = 1."""

from __future__ import annotations

from dataclasses import dataclass

from ..ir import GlobalSumNode
from .common import PIPE, POOL_FIFO_DEPTH, Plan, check
from .maxpool import folding_error, legal_pe, legal_simd  # noqa: F401  (the same rule)

KIND = "globalsum"


@dataclass(frozen=True)
class GlobalSum:
    c: int
    ib: int
    isigned: bool
    n: int                  # pixels summed (H*W)
    ob: int
    fd: int


def plan(node: GlobalSumNode) -> Plan:
    s, o = node.inp, node.out
    err = folding_error(node)
    check(err is None, f"node {node.name}: {err}")
    core = GlobalSum(s.c, s.bits, s.kind == "int", s.h * s.w, o.bits, POOL_FIFO_DEPTH)
    # the sum leaves one cycle after the frame's last pixel, then the unit's pipeline
    return Plan(node.name, KIND, s.h * s.w, 1.0, 1 + PIPE["gsum"], None, None, core, (),
                core.fd, o.beat_bits, 1, s.c)


def contents(node, core) -> dict:
    """No memories with contents."""
    return {}
