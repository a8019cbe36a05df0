"""Residual DAGs in RTL: cf_fork (a stream read by two nodes), the shortcut FIFO and
cf_resadd, wired by the RTL backend from the graph's sources.

* cf_resadd and cf_fork lint clean under `verilator --lint-only -Wall` over their parameter
  edges, and refuse illegal parameters at elaboration (Verilator, Icarus, Yosys) with the
  rule's name, like every library unit (tests/test_rtl_params.py).
* tests/rtl_unit_tb/graphs.py `residual_chain` (an identity block and a stride-2 block with
  a scale-MAC shortcut, both adds folded to SIMD < C, then again at SIMD = C) and a graph
  whose input is forked into a full-rate add (the add the slowest node at SIMD < C, CF = 3,
  signed output without ReLU, an unsigned shortcut): RTL-simulated bit exact against the
  golden model under random stalls, a mid-frame reset and back-pressure; the measured
  interval equals the predicted one and the latency lies near the model's.
* A corrupted parameter word of an add makes that add's stream the first to mismatch.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from generator.backends import rtl
from generator.core import tools
from generator.flows import rtlsim
from generator.hw import perf, units
from generator.hw.ir import Stream
from rtl_unit_tb import graphs as G
from rtl_unit_tb.checks import assert_exact

REPO = Path(__file__).resolve().parent.parent
RTL = REPO / "rtl"
BOARD = {"name": "pynq-z2", "part": "xc7z020clg400-1", "family": "xc7", "clock_mhz": 100,
         "resources": {"LUT": 53200, "FF": 106400, "BRAM36": 140, "DSP": 220}}


# ----------------------------------------------------------------------------- lint, checks

LINT = [
    ("cf_fork", {}), ("cf_fork", {"W": 1}), ("cf_fork", {"W": 160}),
    ("cf_resadd", {}),
    ("cf_resadd", {"SIMD": 4}),                                         # CF 1
    ("cf_resadd", {"C": 3, "SIMD": 1, "ASIGNED": 0, "BSIGNED": 1, "RELU": 0, "SH": 0}),
    ("cf_resadd", {"ZW": 6, "SH": 10, "OB": 2, "FD": 1}),               # SH >= ZW
    ("cf_resadd", {"ZW": 30, "SH": 2, "OB": 8}),                        # OB < ZW - SH
    ("cf_resadd", {"C": 16, "SIMD": 4, "AB": 9, "BB": 29, "MW": 12, "BW": 37, "ZW": 40,
                   "SH": 16, "OB": 24}),                                # products wider than ZW
    ("cf_resadd", {"C": 8, "SIMD": 8, "AB": 1, "BB": 1, "MW": 1, "BW": 1, "ZW": 1, "SH": 0,
                   "OB": 1, "FD": 4}),
]

ILLEGAL = [
    ("cf_fork", {"W": 0}, "W_at_least_1"),
    ("cf_resadd", {"AB": 0}, "C_AB_BB_MW_BW_ZW_OB_at_least_1"),
    ("cf_resadd", {"ZW": 0}, "C_AB_BB_MW_BW_ZW_OB_at_least_1"),
    ("cf_resadd", {"SIMD": 3}, "SIMD_dividing_C"),
    ("cf_resadd", {"SIMD": 8}, "SIMD_dividing_C"),
    ("cf_resadd", {"SIMD": 0}, "SIMD_dividing_C"),
    ("cf_resadd", {"BSIGNED": 2}, "ASIGNED_BSIGNED_RELU_0_or_1"),
    ("cf_resadd", {"RELU": -1}, "ASIGNED_BSIGNED_RELU_0_or_1"),
    ("cf_resadd", {"SH": -1}, "SH_at_least_0"),
    ("cf_resadd", {"FD": 3}, "FD_1_or_a_power_of_2"),
    ("cf_resadd", {"WRT": 1, "LA": 1, "LD": 71}, "WRT_0_or_1_with_LA_LD_holding_the_parameters"),
]

LEGAL = [("cf_fork", {"W": 1}), ("cf_resadd", {}),
         ("cf_resadd", {"C": 3, "SIMD": 1, "FD": 1, "SH": 0, "RELU": 0}),
         ("cf_resadd", {"C": 6, "SIMD": 6, "ZW": 4, "SH": 9, "FD": 8})]


def _verilator(module, params, flags=("-Wall",)):
    cmd = [str(tools.verilator()), "--lint-only", *flags, f"-I{RTL}", "--top-module", module]
    cmd += [f"-G{k}={v}" for k, v in params.items()] + [str(RTL / f"{module}.v")]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          env=tools.verilator_env())


def _icarus(module, params):
    cmd = [str(tools.iverilog()), "-g2012", "-t", "null", "-y", str(RTL), "-s", module]
    cmd += [f"-P{module}.{k}={v}" for k, v in params.items()] + [str(RTL / f"{module}.v")]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _yosys(module, params):
    over = ", ".join(f".{k}({v})" for k, v in params.items())
    with tempfile.TemporaryDirectory() as d:
        wrap = Path(d) / "cfp_wrap.v"
        wrap.write_text(f"module cfp_wrap;\n    {module} #({over}) u_dut ();\nendmodule\n")
        files = " ".join(str(f) for f in sorted(RTL.glob("*.v")))
        return subprocess.run([str(tools.yosys()), "-q", "-p",
                               f"read_verilog {files} {wrap}; hierarchy -check -top cfp_wrap"],
                              capture_output=True, text=True, timeout=120)


TOOLS = {"verilator": _verilator, "icarus": _icarus, "yosys": _yosys}


def _ids(cases):
    return [f"{c[0]}-" + ("-".join(f"{k}{v}" for k, v in c[1].items()) or "default")
            for c in cases]


@pytest.mark.sim
@pytest.mark.parametrize("module,params", LINT, ids=_ids(LINT))
def test_lint_clean(module, params):
    r = _verilator(module, params)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.sim
@pytest.mark.parametrize("tool", list(TOOLS))
@pytest.mark.parametrize("module,params,rule", ILLEGAL, ids=_ids(ILLEGAL))
def test_illegal_parameters_fail_elaboration(tool, module, params, rule):
    r = TOOLS[tool](module, params)
    out = r.stdout + r.stderr
    name = f"{module}_needs_{rule}"
    assert r.returncode != 0 and name in out, f"{tool} {module} {params}:\n{out}"
    assert set(re.findall(rf"\b{module}_needs_\w+?(?=\W)", out)) == {name}, out


@pytest.mark.sim
@pytest.mark.parametrize("tool", list(TOOLS))
@pytest.mark.parametrize("module,params", LEGAL, ids=_ids(LEGAL))
def test_legal_parameters_elaborate(tool, module, params):
    r = TOOLS[tool](module, params)
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "_needs_" not in out, out


@pytest.mark.sim
def test_refused_under_the_simulation_build_flags():
    r = _verilator("cf_resadd", {"SIMD": 3}, ("-Wno-fatal", "-Wno-lint", "-Wno-style"))
    assert r.returncode != 0 and "cf_resadd_needs_SIMD_dividing_C" in r.stdout + r.stderr


def test_every_rule_has_an_illegal_case():
    for module in ("cf_resadd", "cf_fork"):
        rules = set(re.findall(r"\b(cf_\w+?_needs_\w+)\s+u_bad\b", (RTL / f"{module}.v").read_text()))
        assert rules == {f"{m}_needs_{r}" for m, _, r in ILLEGAL if m == module}, rules
    assert {"cf_resadd.v", "cf_fork.v"} <= set(rtl.LIBRARY)


# ----------------------------------------------------------------------------- graphs

# residual_chain with both adds at SIMD = C (one pixel per cycle)
FULL = {"b1": (1, 8), "b2": (1, 16)}


def forked_input(simd: int, hw: int = 8):
    """The graph input read twice: a k1 int8 conv (one pixel per cycle) is the body, the
    uint8 input itself the shortcut; the add has no ReLU (signed output). At SIMD = 1 the
    add (3 cycles per pixel) is the slowest node, at SIMD = 3 both run at full rate."""
    rng = np.random.default_rng(11 + simd)
    inp = Stream(hw, hw, 3, "uint", 8)
    c = G.conv("c1", inp, 3, 1, rng, act="relu_offset", frac_bits=0, pe=3, simd=3)
    add = G.resadd("add", c.out, inp, rng, body="c1", short="", shift=6, relu=False,
                   m_max=1 << 7, simd=simd)
    g = G.chain([c, add], f"forked_input_{simd}")
    G.calibrate(g, rng)
    perf.size_skip_fifos(g)
    return g.validate()


def slow_body(simd: int = 1):
    """stem (one pixel per cycle) forked into a k1 threshold -> xnor k1 conv at 8 cycles per
    pixel (the body) and the add's shortcut; the add at SIMD 1 also takes 8 cycles per pixel."""
    rng = np.random.default_rng(21)
    inp = Stream(8, 8, 3, "uint", 8)
    stem = G.conv("stem", inp, 8, 1, rng, act="relu_offset", frac_bits=0, pe=8, simd=3)
    t = G.avgpool("t", stem.out, 1, rng)
    t.simd = 8
    body = G.conv("body", t.out, 8, 1, rng, act="relu_offset", frac_bits=0, pe=1, simd=8)
    add = G.resadd("add", body.out, stem.out, rng, body="body", short="stem", shift=12,
                   simd=simd)
    g = G.chain([stem, t, body, add], "slow_body")
    G.calibrate(g, rng)
    perf.size_skip_fifos(g)
    return g.validate()


def _build(graph, out: Path, frames: int) -> dict:
    G.write_vectors(graph, out, frames=frames, seed=3)
    return rtl.render(graph, out, BOARD)


def _check_perf(graph, res):
    plans = units.plan_graph(graph)
    assert res["interval_cycles"] == res["predicted_interval_cycles"] == max(p.cycles for p in plans)
    model = perf.latency_cycles(graph, plans)
    assert abs(res["latency_cycles"] - model) <= 0.05 * model + 8, (res["latency_cycles"], model)


@pytest.fixture(scope="module")
def residual_build(tmp_path_factory):
    graph = G.residual_chain(np.random.default_rng(0))
    out = tmp_path_factory.mktemp("residual") / "out"
    return graph, out, _build(graph, out, frames=4)


def test_residual_render(residual_build):
    """Each node reads its sources' streams; the two forked streams pass a cf_fork; each
    add's shortcut a cf_fifo at least as deep as its plan's; the plan's parameter words."""
    graph, out, man = residual_build
    nodes = {n["name"]: n for n in man["nodes"]}
    assert set(n["name"] for n in man["nodes"] if "fork" in n) == {"conv1", "b1"}
    assert "input_fork" not in man
    assert nodes["conv1"]["fork"]["out"] == "n0_f0" and nodes["conv1"]["fork"]["out_b"] == "n0_f1"
    for name in ("b1", "b2"):
        node = graph.node(name)
        c = units.plan(node).core
        skip, add = nodes[name]["units"]
        assert skip["module"] == "cf_fifo" and add["module"] == "cf_resadd"
        assert skip["params"]["DEPTH"] == c.skip >= node.skip_depth
        assert skip["params"]["W"] == node.inp_b.beat_bits and add["in_b"] == skip["out"]
        assert add["params"]["SIMD"] == c.simd < c.c and add["params"]["SH"] == c.sh
        words = (out / "rtl" / "mem" / f"{name}_p.hex").read_text().split()
        assert words == rtl.pack_words(units.resadd.param_words(node, c), c.pw)
        assert len(words) == c.cf
    # body b1_c2 on port a, conv1's second fork output through b1's skip FIFO on port b
    assert nodes["b1"]["units"][1]["in"] == "n3" and nodes["b1"]["units"][0]["in"] == "n0_f1"
    assert nodes["b1_t"]["units"][0]["in"] == "n0_f0"        # a k = 1 pool: no cf_swg
    assert nodes["b2_sc"]["units"][0]["in"] == "n4_f1" and nodes["b2_t"]["units"][0]["in"] == "n4_f0"
    top = (out / "rtl" / "cfgen_top.v").read_text()
    assert top.count("cf_fork #(") == 2 and top.count("cf_resadd #(") == 2


@pytest.mark.sim
def test_residual_top_lint_clean(residual_build):
    _, out, man = residual_build
    files = [str(out / "rtl" / f) for f in man["sources"]]
    r = subprocess.run([str(tools.verilator()), "--lint-only", "-Wall", "--top-module", man["top"],
                        *files], capture_output=True, text=True, timeout=300,
                       env=tools.verilator_env(), cwd=out / "sim")
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.sim
def test_residual_rtl_sim_bit_exact(residual_build):
    """All rtlsim tests (random stalls, reset mid-frame, back-pressure, TLAST resync) bit
    exact; interval = predicted. Then one corrupted word of b2's parameter ROM: b2's stream
    is the first to mismatch (memories load at run time: no rebuild)."""
    graph, out, _ = residual_build
    res = rtlsim.run(out, frames=4, simulator="verilator", perf_frames=4, pattern_frames=2)
    assert_exact(res)
    assert set(res["tests"]) == {"perf", "stalls", "reset", "backpressure", "tlast"}
    _check_perf(graph, res)

    pfile = out / "rtl" / "mem" / "b2_p.hex"
    saved = pfile.read_text()
    node = graph.node("b2")
    c = units.plan(node).core
    words = saved.split()
    # bias of channel 1 (word 0, lane 1, field 5) + 2^(SH+2): y moves by 4 in channel 1
    w = int(words[0], 16) ^ (1 << (5 * c.pw + c.sh + 2))
    words[0] = f"{w:0{len(words[0])}x}"
    pfile.write_text("\n".join(words) + "\n")
    try:
        bad = rtlsim.run(out, frames=4, simulator="verilator", tests=["perf", "stalls"],
                         perf_frames=3, pattern_frames=1)
    finally:
        pfile.write_text(saved)
    assert not bad["bit_exact"]
    mism = {k: v["mismatches"] for k, v in bad["per_node"].items()}
    assert mism["b2"] > 0 and mism["m_axis"] > 0, mism
    assert all(mism[n.name] == 0 for n in graph.nodes[:9]), mism


@pytest.mark.sim
def test_residual_full_rate_adds(tmp_path):
    """Both adds at SIMD = C (one pixel per cycle): bit exact under stalls and reset."""
    graph = G.residual_chain(np.random.default_rng(0), fold=FULL)
    man = _build(graph, tmp_path / "out", frames=3)
    adds = [u["params"] for n in man["nodes"] for u in n["units"] if u["module"] == "cf_resadd"]
    assert [(p["SIMD"], p["C"]) for p in adds] == [(8, 8), (16, 16)]
    res = rtlsim.run(tmp_path / "out", frames=3, simulator="verilator",
                     tests=["perf", "stalls", "reset"], perf_frames=3, pattern_frames=1)
    assert_exact(res)
    _check_perf(graph, res)


@pytest.mark.sim
@pytest.mark.parametrize("simd,simulator", [(3, "verilator"), (1, "verilator"), (1, "icarus")])
def test_forked_input_add(simd, simulator, tmp_path):
    """The input forked (cf_fork at the AXI input FIFO) into a body and the shortcut FIFO.
    SIMD = C: fork, FIFO and add at one pixel per cycle (interval H*W); SIMD = 1: the add
    sets the interval (H*W*C); Icarus: a second simulator's semantics."""
    graph = forked_input(simd)
    man = _build(graph, tmp_path / "out", frames=3)
    assert man["input_fork"]["module"] == "cf_fork"
    assert [u["in"] for u in man["nodes"][1]["units"]] == ["in_f1", "n0"]
    plans = units.plan_graph(graph)
    assert max(p.cycles for p in plans) == plans[1].cycles == 64 * 3 // simd
    tests = ["perf", "stalls", "reset", "backpressure"] if simulator == "verilator" else ["perf", "stalls"]
    res = rtlsim.run(tmp_path / "out", frames=3, simulator=simulator, tests=tests,
                     perf_frames=4, pattern_frames=1)
    assert_exact(res)
    _check_perf(graph, res)
    assert json.loads((tmp_path / "out" / "sim" / "results.json").read_text())["bit_exact"]


@pytest.mark.sim
def test_add_behind_a_one_slot_body_output(tmp_path, monkeypatch):
    """The body's matrix unit ends in a one-slot output register (cf_fifo DEPTH 1: wide
    pixels of 8 or more beats; here forced) and produces a pixel every 8 cycles, as fast
    as the add (SIMD 1, 8 chunks) consumes them: the add takes the a beat with its first
    chunk, so the slot frees at once. (Holding it for the 8 chunks, as the b beat is held
    in the shortcut FIFO, serialised the two: 14 cycles per pixel on digits_res.)"""
    monkeypatch.setattr(units.common, "OUT_SLOT_BITS", 1)
    graph = slow_body()
    man = _build(graph, tmp_path / "out", frames=3)
    mvu = [u["params"] for u in man["nodes"][2]["units"] if u["module"] == "cf_mvu"][0]
    assert mvu["FD"] == 1
    plans = units.plan_graph(graph)
    assert plans[2].cycles == plans[3].cycles == max(p.cycles for p in plans) == 512
    res = rtlsim.run(tmp_path / "out", frames=3, simulator="verilator",
                     tests=["perf", "stalls"], perf_frames=4, pattern_frames=1)
    assert_exact(res)
    _check_perf(graph, res)
