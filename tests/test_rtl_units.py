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

from generator import rtlsim, tools
from generator.backends import rtl
from generator.ir import Stream
from rtl_unit_tb import graphs as G

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.sim

# ----------------------------------------------------------------------------- lint

LINT_CASES = [
    ("cf_fifo", {}), ("cf_fifo", {"W": 33, "DEPTH": 8}),
    ("cf_rom", {}), ("cf_rom", {"STYLE": 1, "DEPTH": 100, "W": 72}), ("cf_rom", {"STYLE": 2}),
    ("cf_swg", {}), ("cf_swg", {"K": 1, "P": 0, "C": 4, "SIMD": 4, "DEPTH": 4}),
    ("cf_swg", {"K": 5, "P": 2, "C": 8, "SIMD": 2, "NF": 3, "W": 8, "H": 6, "B": 8, "DEPTH": 64}),
    ("cf_swg", {"K": 3, "S": 2, "P": 1, "C": 4, "SIMD": 4, "H": 7, "W": 7, "DEPTH": 32}),
    ("cf_mvu", {}), ("cf_mvu", {"MATRIX": 1, "AW": 20, "TW": 20}),
    ("cf_mvu", {"ACT": 1, "OB": 6, "TW": 10, "FRAC": 2}),
    ("cf_mvu", {"MATRIX": 1, "ACT": 1, "OB": 6, "TW": 10, "FRAC": 2, "AW": 20, "PE": 1}),
    ("cf_mvu", {"SIMD": 8, "KD": 8, "PE": 4, "FD": 8}),
    ("cf_mvu", {"ACT": 1, "OB": 32, "TW": 10}),
    ("cf_mvu", {"ACT": 1, "OB": 10, "TW": 4, "FRAC": 2, "KD": 8, "SIMD": 8}),
    ("cf_mvu", {"MATRIX": 1, "AW": 8, "TW": 8, "FD": 2}),
    ("cf_maxpool", {}), ("cf_maxpool", {"KK": 9, "C": 3}),
    ("cf_avgpool", {}), ("cf_avgpool", {"ISIGNED": 1, "KK": 9, "SW": 12, "TW": 6}),
    ("cf_avgpool", {"ISIGNED": 1, "KK": 1, "SW": 4, "IB": 4}),
    ("cf_avgpool", {"SIMD": 1, "C": 6, "KK": 9}), ("cf_avgpool", {"SIMD": 2, "C": 6}),
    ("cf_scalemac", {}), ("cf_scalemac", {"SIMD": 8, "N": 2, "PE": 2, "CO": 4, "CI": 16}),
    ("cf_scalemac", {"SIMD": 2, "N": 8, "CI": 16, "RELU": 0, "OB": 64}),
    ("cf_scalemac", {"SIMD": 1, "N": 1, "CI": 4, "PE": 2, "CO": 2, "ISIGNED": 1}),
    ("cf_globalsum", {}), ("cf_globalsum", {"N": 1, "IB": 20, "OB": 10}),
    ("cf_axis_in", {}), ("cf_axis_in", {"W": 16}),
    ("cf_axis_out", {}), ("cf_axis_out", {"W": 16, "BEATS": 4}),
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


UNIT_GRAPHS = {"windows": graph_windows, "arith": graph_arith, "scalemac": graph_scalemac}


def run_graph(graph, out: Path, frames: int, full_range=False, simulator="verilator",
              tests=("perf", "stalls"), seed=0):
    G.write_vectors(graph, out, frames, seed=seed, full_range=full_range)
    rtl.render(graph, out, {"name": "test", "clock_mhz": 100})
    return rtlsim.run(out, frames=frames, simulator=simulator, tests=list(tests),
                      perf_frames=3, pattern_frames=1, seed=seed)


def assert_exact(res):
    bad = {k: v for k, v in res["per_node"].items() if v["mismatches"]}
    failed = {k: t.get("message", "") for k, t in res["tests"].items() if not t["passed"]}
    assert res["bit_exact"], f"mismatching streams {bad}; failed tests {failed}"
    for name, v in res["per_node"].items():
        assert v["beats"] > 0, f"stream {name} never moved"


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
