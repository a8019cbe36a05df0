"""RTL library units against the golden model.

* Lint: every rtl/*.v module is clean under `verilator --lint-only -Wall` for several
  parameter sets (no simulation).
* Units: small hand-made graphs with random parameters (tests/rtl_unit_tb/graphs.py) are
  rendered by the RTL backend and simulated with cocotb + Verilator. The test bench checks
  every node's output stream beat by beat against golden.run_node (one cf_check per node),
  so each graph below exercises a set of units/parameters and a failure names the unit.
  One Verilator build per graph; frames run with random input gaps and back-pressure, plus
  latency/interval (the measured interval must match the analytic cycle model).
"""

from __future__ import annotations

import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from generator.flows import rtlsim
from generator.core import tools
from generator.hw import units
from generator.backends import rtl
from generator.hw.ir import Stream
from rtl_unit_tb import graphs as G
from rtl_unit_tb.checks import assert_exact

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.sim

# ----------------------------------------------------------------------------- lint

LINT_CASES = [
    ("cf_add", {}), ("cf_add", {"W": 24}),
    ("cf_fifo", {}), ("cf_fifo", {"W": 33, "DEPTH": 8}), ("cf_fifo", {"W": 40, "DEPTH": 1}),
    ("cf_rom", {}), ("cf_rom", {"STYLE": 1, "DEPTH": 100, "W": 72}), ("cf_rom", {"STYLE": 2}),
    ("cf_ram", {}), ("cf_ram", {"STYLE": 1, "DEPTH": 100, "W": 72}), ("cf_ram", {"STYLE": 3}),
    ("cf_wload", {}),
    ("cf_wload", {"NMEM": 3, "WMAX": 100, "AW": 4, "DEPTHS": "96'h000000100000000100000003",
                  "CHUNKS": "96'h000000040000000100000002"}),
    ("cf_swg", {}), ("cf_swg", {"K": 1, "P": 0, "C": 4, "SIMD": 4, "DEPTH": 4}),
    ("cf_swg", {"K": 5, "P": 2, "C": 8, "SIMD": 2, "NF": 3, "W": 8, "H": 6, "B": 8, "DEPTH": 64}),
    ("cf_swg", {"K": 3, "S": 2, "P": 1, "C": 4, "SIMD": 4, "H": 7, "W": 7, "DEPTH": 32}),
    ("cf_swg", {"K": 3, "P": 1, "C": 2, "SIMD": 2, "TAPS": 3, "H": 5, "W": 5, "DEPTH": 32}),
    ("cf_swg", {"K": 5, "S": 2, "P": 2, "C": 3, "B": 8, "SIMD": 3, "TAPS": 5, "H": 9, "W": 9,
                "DEPTH": 64, "RSTYLE": 1}),
    ("cf_mvu", {}), ("cf_mvu", {"MATRIX": 1, "AW": 20, "TW": 20}),
    ("cf_mvu", {"ACT": 1, "OB": 6, "TW": 10, "FRAC": 2}),
    ("cf_mvu", {"MATRIX": 1, "ACT": 1, "OB": 6, "TW": 10, "FRAC": 2, "AW": 20, "PE": 1}),
    ("cf_mvu", {"SIMD": 8, "KD": 8, "PE": 4, "FD": 8}),
    ("cf_mvu", {"ACT": 1, "OB": 32, "TW": 10}),
    ("cf_mvu", {"ACT": 1, "OB": 10, "TW": 4, "FRAC": 2, "KD": 8, "SIMD": 8}),
    ("cf_mvu", {"MATRIX": 1, "AW": 8, "TW": 8, "FD": 2}), ("cf_mvu", {"FD": 1}),
    ("cf_mvu", {"MATRIX": 1, "AW": 20, "TW": 20, "MULT": 1}),
    ("cf_mvu", {"MATRIX": 1, "AW": 20, "TW": 20, "MULT": 1, "DG": 2}),
    ("cf_mvu", {"MATRIX": 1, "AW": 21, "TW": 21, "MULT": 1, "PE": 3, "CO": 6, "SIMD": 9, "KD": 18, "DG": 3}),
    ("cf_mvu", {"MATRIX": 1, "AW": 21, "TW": 21, "MULT": 1, "PE": 3, "CO": 6, "SIMD": 9, "KD": 18}),
    ("cf_mvu", {"MATRIX": 1, "ACT": 1, "OB": 6, "TW": 10, "FRAC": 2, "AW": 20, "PE": 1, "MULT": 1}),
    ("cf_mvu", {"PIPE": 1}), ("cf_mvu", {"PIPE": 2, "SIMD": 8, "KD": 16, "PCH": 3}),
    ("cf_mvu", {"PIPE": 2, "SIMD": 8, "KD": 8, "PE": 4, "FD": 8, "PCH": 4, "ACT": 1, "OB": 6, "TW": 10}),
    ("cf_mvu", {"MATRIX": 1, "AW": 20, "TW": 20, "MULT": 1, "PIPE": 1}),
    ("cf_mvu", {"MATRIX": 1, "AW": 20, "TW": 20, "PIPE": 2}),
    ("cf_mvu", {"WRT": 1, "LA": 2, "LD": 18}), ("cf_mvu", {"WRT": 1, "LA": 2, "LD": 18, "WSTYLE": 3}),
    ("cf_maxpool", {}), ("cf_maxpool", {"KK": 9, "C": 3}), ("cf_maxpool", {"KK": 4, "C": 3, "B": 6}),
    ("cf_avgpool", {}), ("cf_avgpool", {"ISIGNED": 1, "KK": 9, "SW": 12, "TW": 6}),
    ("cf_avgpool", {"ISIGNED": 1, "KK": 1, "SW": 4, "IB": 4}),
    ("cf_avgpool", {"SIMD": 1, "C": 6, "KK": 9}), ("cf_avgpool", {"SIMD": 2, "C": 6}),
    ("cf_scalemac", {}), ("cf_scalemac", {"SIMD": 8, "N": 2, "PE": 2, "CO": 4, "CI": 16}),
    ("cf_scalemac", {"SIMD": 2, "N": 8, "CI": 16, "RELU": 0, "OB": 64}),
    ("cf_scalemac", {"SIMD": 1, "N": 1, "CI": 4, "PE": 2, "CO": 2, "ISIGNED": 1}),
    ("cf_scalemac", {"WRT": 1, "LA": 2, "LD": 32}), ("cf_avgpool", {"WRT": 1, "LA": 1, "LD": 36}),
    ("cf_resadd", {"WRT": 1, "LA": 1, "LD": 72}),
    ("cf_globalsum", {}), ("cf_globalsum", {"N": 1, "IB": 20, "OB": 10}),
    ("cf_resadd", {}), ("cf_resadd", {"SIMD": 4}),
    ("cf_resadd", {"C": 3, "SIMD": 1, "ASIGNED": 0, "RELU": 0, "SH": 0}),
    ("cf_resadd", {"C": 16, "SIMD": 4, "AB": 9, "BB": 29, "MW": 12, "BW": 37, "ZW": 40,
                   "SH": 16, "OB": 24}),
    ("cf_fork", {}), ("cf_fork", {"W": 1}),
    ("cf_widen", {}), ("cf_widen", {"IW": 24, "R": 25, "SF": 1, "NF": 48}),
    ("cf_widen", {"IW": 24, "R": 5, "SF": 5, "NF": 1}), ("cf_widen", {"R": 1, "SF": 1, "NF": 1}),
    ("cf_widen", {"IW": 3, "R": 1, "SF": 3, "NF": 4}),
    ("cf_axis_in", {}), ("cf_axis_in", {"W": 16}), ("cf_axis_in", {"W": 24, "BEATS": 1024}),
    ("cf_axis_in", {"W": 1, "BEATS": 2}),
    ("cf_axis_out", {}), ("cf_axis_out", {"W": 16, "BEATS": 4}),
    ("cf_axis_out", {"W": 4, "BEATS": 16, "FD": 2}), ("cf_axis_out", {"W": 170, "BEATS": 1, "FD": 64}),
    ("cf_check", {}),
]


def _lint(files, top, params=None, extra=()):
    vl = tools.verilator()
    cmd = [str(vl), "--lint-only", "-Wall", f"-I{REPO / 'rtl'}", "--top-module", top]
    cmd += [f"-G{k}={v}" for k, v in (params or {}).items()] + list(extra) + [str(f) for f in files]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env=tools.verilator_env())


@pytest.mark.parametrize("module,params", LINT_CASES,
                         ids=[f"{m}-{i}" for i, (m, _) in enumerate(LINT_CASES)])
def test_lint_clean(module, params):
    r = _lint([REPO / "rtl" / f"{module}.v"], module, params)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("module,params", [
    ("cf_axis_in", {"BEATS": 0}), ("cf_axis_in", {"W": 16, "TW": 12}), ("cf_axis_in", {"W": 16, "TW": 8}),
    ("cf_axis_out", {"BEATS": 0}), ("cf_axis_out", {"FD": 3}), ("cf_axis_out", {"FD": 1}),
    ("cf_axis_out", {"W": 9, "TW": 9})])
def test_axis_adapters_refuse_bad_parameters(module, params):
    """Elaboration-time parameter checks: an impossible parameter stops the tools."""
    r = _lint([REPO / "rtl" / f"{module}.v"], module, params)
    assert r.returncode != 0 and "needs" in r.stdout + r.stderr, r.stdout + r.stderr


@pytest.mark.parametrize("params", [{"PIPE": 3}, {"PIPE": -1}, {"PIPE": 2, "PCH": 0}])
def test_mvu_refuses_bad_pipeline_parameters(params):
    """cf_mvu PIPE / PCH are checked at elaboration time."""
    r = _lint([REPO / "rtl" / "cf_mvu.v", REPO / "rtl" / "cf_rom.v", REPO / "rtl" / "cf_fifo.v",
               REPO / "rtl" / "cf_add.v"], "cf_mvu", params)
    assert r.returncode != 0 and "needs" in r.stdout + r.stderr, r.stdout + r.stderr


def test_every_library_file_is_linted():
    names = {p.stem for p in (REPO / "rtl").glob("*.v")}
    assert names == {m for m, _ in LINT_CASES}
    assert set(rtl.LIBRARY + rtl.SIM_LIBRARY) == {f"{m}.v" for m in names}


# ----------------------------------------------------------------------------- units

def graph_windows(rng):
    """SWG strides/pads/odd sizes, int8 MVU with NF = 1, xnor MVU SF > 1 / NF > 1 / fully
    parallel (SF*NF = 1, deep output FIFO), pad value 1, max-pools k3 s1 p1 and k2."""
    inp = Stream(7, 7, 3, "uint", 8)
    n1 = G.conv("c_int8_s2", inp, 8, 3, rng, stride=2, pad=1, pe=8, simd=3)
    n2 = G.conv("c_k2", n1.out, 8, 2, rng, pe=1, simd=2)
    n3 = G.maxpool("mp_k3s1p1", n2.out, 3, rng, stride=1, pad=1)
    n4 = G.conv("c_k3s2_pad1", n3.out, 8, 3, rng, stride=2, pad=1, pe=2, simd=8, pad_value=1)
    n5 = G.maxpool("mp_k2", n4.out, 2, rng)
    n6 = G.conv("c_parallel", n5.out, 8, 1, rng, pe=8, simd=8)
    return G.chain([n1, n2, n3, n4, n5, n6], "windows"), False


def graph_arith(rng):
    """Bit-stream input; relu_offset with FRAC 0 and 5 (fully parallel and folded), avg-pool
    k2 s2 and k3 s1 p1, scale MAC with whole groups per beat (SIMD 8 > n 2), no ReLU,
    PE 5, then the global sum of signed values."""
    inp = Stream(6, 6, 16, "bit", 1)
    n1 = G.conv("c_relu_par", inp, 16, 1, rng, act="relu_offset", frac_bits=0, pe=16, simd=16)
    n2 = G.avgpool("ap_k2", n1.out, 2, rng)
    n3 = G.conv("c_relu_k3", n2.out, 8, 3, rng, pad=1, act="relu_offset", frac_bits=5, pe=4,
                simd=16)
    n4 = G.avgpool("ap_k3s1p1", n3.out, 3, rng, stride=1, pad=1)
    n5 = G.conv("c_relu_fold", n4.out, 16, 1, rng, act="relu_offset", pe=2, simd=4)
    n6 = G.scalemac("sm_gpc4", n5.out, 10, 2, rng, pe=5, simd=8, relu=False)
    n7 = G.globalsum("gs", n6.out)
    g = G.chain([n1, n2, n3, n4, n5, n6, n7], "arith")
    G.calibrate(g, rng)
    return g, False


def graph_scalemac(rng):
    """Signed int input over its full range; scale MAC n = 1 (a scale per channel, SIMD 4 =
    4 groups per beat), SIMD = n = 3 without ReLU (signed output), and SIMD 1 < n 4 (a group
    over 4 beats); PE 3, 4 and 1."""
    inp = Stream(3, 4, 12, "int", 6)
    # small weights and scales keep three chained MACs within int64
    n1 = G.scalemac("sm_n1", inp, 6, 1, rng, pe=3, simd=4, scale_bits=2, w_max=3)
    n2 = G.scalemac("sm_n3_simd3", n1.out, 4, 3, rng, pe=4, simd=3, relu=False, scale_bits=3,
                    w_max=3)
    n3 = G.scalemac("sm_n4_simd1", n2.out, 4, 4, rng, pe=1, simd=1, scale_bits=4)
    n4 = G.globalsum("gs", n3.out)
    g = G.chain([n1, n2, n3, n4], "scalemac")
    G.calibrate(g, rng, full_range=True)
    return g, True


def graph_taps(rng):
    """Tap-parallel convolutions (cf_swg -> cf_widen -> cf_mvu). Window rows per cf_swg beat
    (TAPS = k: m a multiple of k, NF*SF < k*k): int8 k5 SIMD 15 (R 1, SF 5, NF 1:
    input-bound), xnor k2 s2 SIMD 64 (R = NF * SF = 2: the collect/replay tie), xnor k3 s2
    p1 SIMD 72 = K with pad value 1 (R 3, SF = NF = 1). Whole pixels per beat: xnor k3 SIMD
    24 (R 3, SF 3, NF 16: replay-bound, the slowest node) and xnor k4 p2 SIMD 32 (m = 2 not
    a multiple of k = 4; R 2, SF 8, NF 2)."""
    inp = Stream(7, 7, 3, "uint", 8)
    n1 = G.conv("c_i8_k5_taps", inp, 8, 5, rng, pad=2, pe=8, simd=15)
    n2 = G.conv("c_k3_taps_sf3", n1.out, 16, 3, rng, pad=1, pe=1, simd=24)
    n2b = G.conv("c_k4_taps_px", n2.out, 16, 4, rng, pad=2, pe=8, simd=32)
    n3 = G.conv("c_k2s2_taps_tie", n2b.out, 8, 2, rng, stride=2, pe=4, simd=64)
    n4 = G.conv("c_k3s2_taps_full", n3.out, 8, 3, rng, stride=2, pad=1, pe=8, simd=72,
                pad_value=1)
    return G.chain([n1, n2, n2b, n3, n4], "taps"), False


UNIT_GRAPHS = {"windows": graph_windows, "arith": graph_arith, "scalemac": graph_scalemac,
               "taps": graph_taps}


def run_graph(graph, out: Path, frames: int, full_range=False, simulator="verilator",
              tests=("perf", "stalls"), seed=0):
    G.write_vectors(graph, out, frames, seed=seed, full_range=full_range)
    rtl.render(graph, out, {"name": "test", "clock_mhz": 100})
    return rtlsim.run(out, frames=frames, simulator=simulator, tests=list(tests),
                      perf_frames=3, pattern_frames=1, seed=seed)


@pytest.mark.parametrize("name", list(UNIT_GRAPHS))
def test_units_bit_exact(name, tmp_path):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    graph, full = UNIT_GRAPHS[name](rng)
    res = run_graph(graph, tmp_path / name, frames=4, full_range=full)
    assert_exact(res)
    # the measured steady-state interval is the slowest unit's analytic cycle count
    pred = res["predicted_interval_cycles"]
    assert res["interval_cycles"] <= 1.05 * pred + 16, (res["interval_cycles"], pred)
    assert res["latency_cycles"] > 0
    if name == "taps":      # a tap-parallel conv is the slowest node: the model is exact
        assert abs(res["interval_cycles"] - pred) <= 0.01 * pred, (res["interval_cycles"], pred)


@pytest.mark.parametrize("name", list(UNIT_GRAPHS))
def test_units_bit_exact_icarus(name, tmp_path):
    """The same graphs on Icarus (a second simulator's semantics: this caught an array
    index wider than its operands, which Verilator wraps and Icarus did not)."""
    rng = np.random.default_rng(zlib.crc32(name.encode()) + 1)
    graph, full = UNIT_GRAPHS[name](rng)
    res = run_graph(graph, tmp_path / name, frames=2, full_range=full, simulator="icarus",
                    seed=1)
    assert_exact(res)
    assert res["interval_cycles"] <= 1.05 * res["predicted_interval_cycles"] + 16


def test_one_slot_output_registers(tmp_path, monkeypatch):
    """Every matrix unit with 8 or more beats per pixel on a one-slot output register
    (cf_fifo DEPTH 1, used for wide outputs): still bit exact, and the interval is still the
    slowest unit's cycle count."""
    monkeypatch.setattr(units.common, "OUT_SLOT_BITS", 1)
    rng = np.random.default_rng(7)
    graph, full = graph_arith(rng)
    out = tmp_path / "slot"
    res = run_graph(graph, out, frames=3, full_range=full)
    assert_exact(res)
    assert ".FD(1)" in (out / "rtl" / "cfgen_top.v").read_text()
    assert res["interval_cycles"] <= 1.05 * res["predicted_interval_cycles"] + 16


# ----------------------------------------------------------------------------- dsp2

def _extreme_weights(node):
    """Lane pairs (0,1), (2,3), ...: every sign combination of +-127 (the hi lane's ROM
    value w_hi - (w_lo < 0) reaches -128), then random weights."""
    w = node.weights.astype(np.int64)
    pats = [(127, -127), (-127, -127), (-127, 127), (127, 127)]
    for j, (a, b) in enumerate(pats):
        if 2 * j + 1 < w.shape[0]:
            w[2 * j], w[2 * j + 1] = a, b
    if w.shape[0] % 2:                     # odd last lane: alternate +-127
        w[-1] = np.where(np.arange(w.shape[1]) % 2, 127, -127)
    node.weights = w.astype(np.int8)


def _extreme_pixels(stream, rng, frames=4):
    """All 255, all 0 (x - 128 = -128: the largest lane sums), random 0/255, random."""
    shape = (stream.h, stream.w, stream.c)
    return np.stack([np.full(shape, 255), np.zeros(shape), rng.choice([0, 255], size=shape),
                     rng.integers(0, 256, shape)][:frames]).astype(np.uint8)


def _tight_thresholds(node, x):
    """Thresholds at accumulator values the input really produces (an off-by-one in the
    x - 128 folding flips bits)."""
    from generator.hw import golden
    flat = golden.conv_acc(node, x).reshape(-1, node.out.c)
    rng = np.random.default_rng(7)
    node.thresholds = flat[rng.integers(0, len(flat), node.out.c),
                           np.arange(node.out.c)].astype(np.int64)
    node.thresholds[0] = flat[:, 0].max()


def graph_dsp2_thr(rng):
    """dsp2, odd PE (the last lane single), SIMD 9 (groups 4+4+1), k3 p1 (pad taps carry
    the x - 128 offset too), threshold; then an xnor conv."""
    inp = Stream(5, 5, 9, "uint", 8)
    n1 = G.conv("c_dsp2_thr", inp, 6, 3, rng, pad=1, pe=3, simd=9)
    _extreme_weights(n1)
    n2 = G.conv("c_after", n1.out, 4, 1, rng, pe=2, simd=3)
    return G.chain([n1, n2], "dsp2_thr")


def graph_dsp2_relu(rng):
    """dsp2, PE 4 x SIMD 3 (one group of 3), SF 9, NF 2, relu_offset FRAC 3 with both signs,
    then the global sum of the signed outputs."""
    inp = Stream(5, 5, 3, "uint", 8)
    n1 = G.conv("c_dsp2_relu", inp, 8, 3, rng, pad=1, act="relu_offset", frac_bits=3, pe=4,
                simd=3)
    _extreme_weights(n1)
    n2 = G.globalsum("gs", n1.out)
    return G.chain([n1, n2], "dsp2_relu")


def graph_dsp2_par(rng):
    """dsp2 fully parallel (SF*NF = 1, one pixel per cycle through the extra stage),
    PE 4 x SIMD 5 (groups 4+1), relu_offset FRAC 0."""
    inp = Stream(4, 4, 5, "uint", 8)
    n1 = G.conv("c_dsp2_par", inp, 4, 1, rng, act="relu_offset", frac_bits=0, pe=4, simd=5)
    _extreme_weights(n1)
    return G.chain([n1], "dsp2_par")


DSP2_GRAPHS = {"thr": graph_dsp2_thr, "relu": graph_dsp2_relu, "par": graph_dsp2_par}


def _fix_relu_width(node):
    """Re-derive the relu_offset output width after the weights changed."""
    w = node.weights.astype(np.int64)
    lo = int((np.where(w < 0, w, 0).sum(axis=1) * 255).min())
    hi = int((np.where(w > 0, w, 0).sum(axis=1) * 255).max())
    node.acc_bits = G.signed_bits(lo, hi)
    if node.act == "relu_offset":
        s64 = node.sign.astype(np.int64)
        top = int(np.max(np.maximum(s64 * hi, s64 * lo) * (1 << node.frac_bits) + node.offset))
        node.out = Stream(node.out.h, node.out.w, node.out.c, "int", G.signed_bits(0, max(top, 1)))


@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
@pytest.mark.parametrize("name", list(DSP2_GRAPHS))
def test_dsp2_bit_exact(name, simulator, tmp_path):
    """cf_mvu MULT 1 (two products per DSP48) against the golden model: extreme pixels
    (0 and 255) and weights (+-127), both activation kinds, odd SIMD and PE, G = 4 not
    dividing SIMD, full-rate and folded."""
    rng = np.random.default_rng(zlib.crc32(b"dsp2" + name.encode()))
    graph = DSP2_GRAPHS[name](rng)
    conv = graph.nodes[0]
    conv.mult = "dsp2"
    _fix_relu_width(conv)
    for a, b in zip(graph.nodes, graph.nodes[1:]):
        b.inp = a.out
    if name == "relu":
        g = graph.nodes[1]
        lo, hi = -(1 << (conv.out.bits - 1)), (1 << (conv.out.bits - 1)) - 1
        n = g.inp.h * g.inp.w
        g.out = Stream(1, 1, g.inp.c, "int", G.signed_bits(min(0, lo * n), hi * n))
    x = _extreme_pixels(graph.input, rng)
    if conv.act == "threshold":
        _tight_thresholds(conv, x)
        conv.thr_bits = G.signed_bits(int(conv.thresholds.min()), int(conv.thresholds.max()))
    out = tmp_path / name
    G.write_vectors(graph, out, frames=len(x), x=x)
    man = rtl.render(graph, out, {"name": "test", "clock_mhz": 100})
    mvu = [u for u in man["nodes"][0]["units"] if u["module"] == "cf_mvu"][0]
    assert mvu["params"]["MULT"] == 1
    res = rtlsim.run(out, frames=len(x), simulator=simulator, tests=["perf", "stalls"],
                     perf_frames=3, pattern_frames=1, seed=0)
    assert_exact(res)
    pred = res["predicted_interval_cycles"]
    assert res["interval_cycles"] <= 1.05 * pred + 16, (res["interval_cycles"], pred)


@pytest.mark.parametrize("name,pipe", [("windows", 2), ("arith", 1)])
def test_mvu_pipeline_stages_bit_exact(name, pipe, tmp_path, monkeypatch):
    """cf_mvu PIPE 1 (read register) and 2 (plus registered partial popcounts, PCH 3 so the
    split is exercised on these small SIMD widths), set in the IR as the folding sets it: bit
    exact under random stalls and reset, and the interval is unchanged (the stages delay
    whole beats; credits keep the rate)."""
    from generator.hw import pipeline

    monkeypatch.setattr(pipeline, "PCH", 3)
    monkeypatch.setattr(rtl, "PCH", 3)
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    graph, full = UNIT_GRAPHS[name](rng)
    convs = [n for n in graph.nodes if n.kind == "conv" and n.matrix == "xnor"]
    assert len(convs) >= 2, "expected xnor convolutions in the unit graph"
    for n in convs:
        n.pipe = pipe
    out = tmp_path / name
    G.write_vectors(graph, out, 4, seed=0, full_range=full)
    man = rtl.render(graph, out, {"name": "test", "clock_mhz": 100})
    mvu = [u["params"] for n in man["nodes"] for u in n["units"] if u["module"] == "cf_mvu"]
    assert sum(1 for p in mvu if p["PIPE"] == pipe and p["PCH"] == 3) == len(convs)
    res = rtlsim.run(out, frames=4, simulator="verilator", tests=["perf", "stalls", "reset"],
                     perf_frames=3, pattern_frames=1, seed=0)
    assert_exact(res)
    assert res["interval_cycles"] == res["predicted_interval_cycles"], res["interval_cycles"]
