"""Per-group scale MAC unit: a ScaleMacNode as cf_swg (its k x k window, replayed) ->
cf_scalemac (rtl/), split_stream or sliding_window -> scalemac (hls/), golden.scalemac
(generator/hw/golden.py).

The core's inner dimension is the window, CI = k*k*C_in in tap order (ky, kx, c): a
linear layer on a flattened H x W map is the window k = H on that map. Groups never
straddle taps (n divides C_in), so the core sees KK*C_in/n groups whose scales are the C_in/n
of the node repeated per tap (`tiled_scales`): cf_scalemac and scalemac need no notion of taps.

Folding: PE divides C_out; SIMD divides C_in and divides, or is a multiple of, the group
size n (a beat holds part of one group, or whole groups).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import pipeline
from ..ir import ScaleMacNode, clog2, signed_bits, unsigned_bits
from .common import PIPE, Memory, Plan, check, divisors, illegal, in_block_ram, out_fifo_depth, pixel_rate_cycles, rom_block, window

KIND = "scalemac"


def legal_pe(node: ScaleMacNode) -> list[int]:
    return divisors(node.out.c)


def legal_simd(node: ScaleMacNode) -> list[int]:
    return [s for s in divisors(node.inp.c) if node.n % s == 0 or s % node.n == 0]


def folding_error(node: ScaleMacNode) -> str | None:
    return (illegal("PE", node.pe, legal_pe(node), f"must divide its {node.out.c} output channels")
            or illegal("SIMD", node.simd, legal_simd(node),
                       f"must divide its {node.inp.c} input channels and divide or be a "
                       f"multiple of the group size n={node.n}"))


@dataclass(frozen=True)
class ScaleMac:
    """cf_scalemac / scalemac parameters; the properties mirror cf_scalemac.v's localparams."""
    ib: int                 # input bits
    isigned: bool
    simd: int
    pe: int
    ci: int
    co: int
    n: int                  # group size (filters per shared scale)
    scw: int                # scale bits (unsigned)
    gw: int                 # IR group-partial bits
    zw: int                 # IR accumulator bits
    bw: int                 # bias bits (signed)
    ob: int
    relu: bool
    fd: int
    pipe: int = 0           # cf_scalemac PIPE: 1 = read register before the DSPs

    @property
    def sf(self) -> int:
        return self.ci // self.simd

    @property
    def nf(self) -> int:
        return self.co // self.pe

    @property
    def gs(self) -> int:
        """Channels of one group in one beat."""
        return min(self.simd, self.n)

    @property
    def gpc(self) -> int:
        """Groups per beat."""
        return self.simd // self.gs

    @property
    def cpg(self) -> int:
        """Beats per group."""
        return self.n // self.gs

    @property
    def prw(self) -> int:
        return self.ib + 9

    @property
    def sjw(self) -> int:
        return self.prw + clog2(self.gs + 1)

    @property
    def gpw(self) -> int:
        return max(self.gw, self.prw + clog2(self.n + 1)) + 1

    @property
    def mw(self) -> int:
        return self.gpw + self.scw + 1 + clog2(self.gpc + 1)

    @property
    def zi(self) -> int:
        return max(max(self.zw, self.bw), self.mw + clog2(self.ci // self.n + 1) + 1) + 1


def _weights_in_bram(node: ScaleMacNode) -> bool:
    sf, nf = node.k * node.k * node.inp.c // node.simd, node.out.c // node.pe
    depth, width = nf * sf, node.pe * node.simd * 8
    return in_block_ram(depth, width, block=rom_block(depth, width))


def choose_pipe(node: ScaleMacNode, clock_mhz: float | None) -> int:
    """cf_scalemac PIPE for the node at its folding and the target clock."""
    return pipeline.smac_pipe(min(node.simd, node.n), _weights_in_bram(node), clock_mhz)


def path_ns(node: ScaleMacNode) -> float:
    """The node's estimated worst path at its folding and pipelining (pipeline.py)."""
    return pipeline.smac_path_ns(min(node.simd, node.n), _weights_in_bram(node), node.pipe)


def meets_clock(node: ScaleMacNode, clock_mhz: float | None) -> bool:
    """Whether the node's DSP cascade (GS = min(SIMD, n) products) at its pipelining is
    estimated to fit the period (the folding prefers foldings that do)."""
    return pipeline.smac_meets(min(node.simd, node.n), _weights_in_bram(node), node.pipe,
                               clock_mhz)


def plan(node: ScaleMacNode) -> Plan:
    s, o = node.inp, node.out
    check(node.pipe in (0, 1), f"{node.name}: pipe {node.pipe!r:.20} must be 0 or 1")
    err = folding_error(node)
    check(err is None, f"node {node.name}: {err}")
    check(node.pad == 0, f"{node.name}: a scale MAC window is unpadded")
    scales = np.asarray(node.scales).astype(np.int64)
    bias = np.asarray(node.bias).astype(np.int64)
    kk = node.k * node.k
    sf, nf = kk * s.c // node.simd, o.c // node.pe
    core = ScaleMac(s.bits, s.kind == "int", node.simd, node.pe, kk * s.c, o.c, node.n,
                    max(int(node.scale_bits), unsigned_bits(int(scales.max()))),
                    int(node.group_bits or 1), int(node.acc_bits or 1),
                    max(signed_bits(int(min(bias.min(), 0)), int(max(bias.max(), 0))),
                        int(node.param_bits)), o.bits,
                    bool(node.relu), out_fifo_depth(o.beat_bits, sf * nf), int(node.pipe))
    win = window(s, node.k, node.stride, 0, node.simd, nf, 0, 1, node.name)
    mems = (Memory("weights", nf * sf, node.pe * node.simd * 8, rom=True,
                   block=rom_block(nf * sf, node.pe * node.simd * 8)),
            Memory("scales", sf, core.gpc * core.scw, rom=True),
            Memory("bias", nf, node.pe * core.bw, rom=True))
    return Plan(node.name, KIND, pixel_rate_cycles(o.h * o.w, sf * nf, s.h * s.w),
                float(sf * nf), PIPE["swg"] + PIPE["smac"] + core.pipe, win, None, core, mems, core.fd,
                o.beat_bits, o.h * o.w, node.pe)


def weight_words(node: ScaleMacNode, core: ScaleMac) -> np.ndarray:
    """[NF*SF, PE*SIMD]: word nf*SF + sf, lane p, element i = w[nf*PE + p, sf*SIMD + i]."""
    pe, simd, sf, nf = core.pe, core.simd, core.sf, core.nf
    w = np.asarray(node.weights).astype(np.int64).reshape(core.co, core.ci)
    return w.reshape(nf, pe, sf, simd).transpose(0, 2, 1, 3).reshape(nf * sf, pe * simd)


def tiled_scales(node: ScaleMacNode) -> np.ndarray:
    """[KK*C_in/n]: the scale of every group of the core's inner dimension (tap-major)."""
    return np.tile(np.asarray(node.scales).astype(np.int64), node.k * node.k)


def scale_words(node: ScaleMacNode, core: ScaleMac) -> np.ndarray:
    """[SF, GPC]: the scales of the groups in beat sf (a group spanning CPG beats repeats)."""
    scales = tiled_scales(node)
    if core.cpg == 1:
        idx = np.arange(core.sf)[:, None] * core.gpc + np.arange(core.gpc)[None, :]
    else:
        idx = (np.arange(core.sf) // core.cpg)[:, None]
    return scales[idx]


def bias_words(node: ScaleMacNode, core: ScaleMac) -> np.ndarray:
    return np.asarray(node.bias).astype(np.int64).reshape(core.nf, core.pe)


def contents(node: ScaleMacNode, core: ScaleMac) -> dict:
    """{memory role: (fields [depth, n], field bits)} of the plan's read-only memories."""
    return {"weights": (weight_words(node, core), 8),
            "scales": (scale_words(node, core), core.scw),
            "bias": (bias_words(node, core), core.bw)}
