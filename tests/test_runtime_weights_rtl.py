"""Run-time weights, RTL side (docs/WEIGHTS.md, docs/RTL.md "Run-time weights").

* Lint: cf_wload and cf_ram, and the units with their write ports (WRT 1, UltraRAM weights
  at WSTYLE 3) are clean under `verilator --lint-only -Wall`; illegal parameters stop the
  tools at elaboration with the rule's name.
* cf_wload alone (cocotb, sim/cf_wload_tb.py): random layouts under random input gaps and
  status back-pressure; every write, the Fletcher status (generator/hw/weights.py), `loaded`
  at power-up, on a reload, after a reset that cuts a load and after one that does not.
* Rendering: a ROM build has no weight port and the memory files of units.contents; a
  run-time build's top has the ports, no memory file for a streamed memory, and the loader
  layout of weights.memories; UltraRAM weights render STYLE 3 and need run-time weights.
* Simulation: the test chain of every node kind (one conv's weights in UltraRAM) and the
  residual chain with run-time weights, every rtlsim test bit exact with the status equal to
  weights.json's checksum (every test loads; the random-stall test reloads half way with
  frames held); a flipped weight bit fails the run. `init digits` -> `build
  --runtime-weights` -> `make sim` bit exact, and `CFGEN_WEIGHT_FLIP=... make sim` fails.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from generator.backends import rtl
from generator.core import tools
from generator.core.errors import BuildError, CfgenError
from generator.flows import rtlsim
from generator.hw import units, weights
from generator.hw.ir import Graph, Stream
from rtl_unit_tb import graphs as G
from rtl_unit_tb.checks import assert_exact

REPO = Path(__file__).resolve().parent.parent
RTL = REPO / "rtl"
pytestmark = pytest.mark.sim
BOARD = {"name": "pynq-z2", "part": "xc7z020clg400-1", "family": "xc7", "clock_mhz": 100,
         "resources": {"LUT": 53200, "FF": 106400, "BRAM36": 140, "DSP": 220}}


def _vec(values, bits=32) -> str:
    """A packed Verilog parameter vector, element 0 lowest."""
    return f"{bits * len(values)}'h" + "".join(f"{v:0{bits // 4}x}" for v in reversed(values))


# ----------------------------------------------------------------------------- lint

LINT = [
    ("cf_wload", {}),
    ("cf_wload", {"NMEM": 3, "WMAX": 100, "AW": 4, "DEPTHS": _vec([3, 1, 16]),
                  "CHUNKS": _vec([2, 1, 4])}),
    ("cf_wload", {"NMEM": 2, "WMAX": 9216, "AW": 1, "DEPTHS": _vec([2, 1]),
                  "CHUNKS": _vec([288, 1])}),
    ("cf_wload", {"NMEM": 1, "WMAX": 5, "AW": 10, "DEPTHS": _vec([1024]), "CHUNKS": _vec([1])}),
    ("cf_ram", {}), ("cf_ram", {"STYLE": 1, "DEPTH": 100, "W": 72}), ("cf_ram", {"STYLE": 2}),
    ("cf_ram", {"STYLE": 3, "DEPTH": 4096, "W": 72}), ("cf_ram", {"W": 1, "DEPTH": 1}),
    # the units' write ports (defaults: cf_mvu weights 4 x 8, params 2 x 18; cf_scalemac
    # 2 x 64, 2 x 16, 1 x 32; cf_avgpool 1 x 36; cf_resadd 2 x 72)
    ("cf_mvu", {"WRT": 1, "LA": 2, "LD": 18}), ("cf_mvu", {"WRT": 1, "LA": 5, "LD": 40, "WSTYLE": 3}),
    ("cf_mvu", {"WRT": 1, "LA": 2, "LD": 64, "MATRIX": 1, "AW": 20, "TW": 20, "MULT": 1, "PIPE": 1}),
    ("cf_mvu", {"WRT": 1, "LA": 3, "LD": 9, "PIPE": 2, "SIMD": 8, "KD": 16, "PCH": 3, "PE": 1}),
    ("cf_mvu", {"WRT": 1, "LA": 1, "LD": 36, "SIMD": 8, "KD": 8, "PE": 4, "CO": 4, "FD": 1}),
    ("cf_scalemac", {"WRT": 1, "LA": 2, "LD": 64}), ("cf_scalemac", {"WRT": 1, "LA": 3, "LD": 64, "WSTYLE": 3, "PIPE": 1}),
    ("cf_scalemac", {"WRT": 1, "LA": 4, "LD": 128, "SIMD": 8, "N": 2, "PE": 2, "CO": 4, "CI": 16}),
    ("cf_avgpool", {"WRT": 1, "LA": 1, "LD": 36}), ("cf_avgpool", {"WRT": 1, "LA": 3, "LD": 18, "SIMD": 2, "C": 6}),
    ("cf_resadd", {"WRT": 1, "LA": 1, "LD": 72}), ("cf_resadd", {"WRT": 1, "LA": 1, "LD": 144, "SIMD": 4}),
]

ILLEGAL = [
    ("cf_wload", {"NMEM": 0}, "NMEM_and_WMAX_at_least_1_and_AW_1_to_30"),
    ("cf_wload", {"AW": 31}, "NMEM_and_WMAX_at_least_1_and_AW_1_to_30"),
    ("cf_wload", {"NMEM": 2, "WMAX": 40, "AW": 2, "DEPTHS": _vec([5, 1]), "CHUNKS": _vec([2, 1])},
     "every_DEPTH_1_to_2_pow_AW_and_CHUNKS_1_to_WMAX_over_32"),
    ("cf_wload", {"NMEM": 2, "WMAX": 40, "AW": 3, "DEPTHS": _vec([5, 1]), "CHUNKS": _vec([3, 1])},
     "every_DEPTH_1_to_2_pow_AW_and_CHUNKS_1_to_WMAX_over_32"),
    ("cf_wload", {"NMEM": 2, "WMAX": 40, "AW": 3, "DEPTHS": _vec([0, 1]), "CHUNKS": _vec([1, 1])},
     "every_DEPTH_1_to_2_pow_AW_and_CHUNKS_1_to_WMAX_over_32"),
    ("cf_ram", {"DEPTH": 0}, "W_and_DEPTH_at_least_1"),
    ("cf_ram", {"STYLE": 4}, "STYLE_0_to_3"),
    ("cf_mvu", {"WRT": 2}, "WRT_0_or_1_with_LA_LD_holding_the_memories"),
    ("cf_mvu", {"WRT": 1, "LA": 2, "LD": 17}, "WRT_0_or_1_with_LA_LD_holding_the_memories"),
    ("cf_mvu", {"WRT": 1, "LA": 2, "LD": 18, "WSTYLE": 4}, "WSTYLE_0_to_3_with_WRT_1"),
    ("cf_mvu", {"WSTYLE": 3}, "WSTYLE_0_to_2"),           # UltraRAM needs the write port
    ("cf_scalemac", {"WRT": 1, "LA": 1, "LD": 64}, "WRT_0_or_1_with_LA_LD_holding_the_memories"),
    ("cf_scalemac", {"WRT": 1, "LA": 2, "LD": 64, "WSTYLE": 5}, "WSTYLE_0_to_3_with_WRT_1"),
    ("cf_avgpool", {"WRT": 1, "LA": 1, "LD": 35}, "WRT_0_or_1_with_LA_LD_holding_the_thresholds"),
    ("cf_resadd", {"WRT": 1, "LA": 1, "LD": 71}, "WRT_0_or_1_with_LA_LD_holding_the_parameters"),
]


def _lint(module: str, params: dict) -> subprocess.CompletedProcess:
    cmd = [str(tools.verilator()), "--lint-only", "-Wall", f"-I{RTL}", "--top-module", module]
    cmd += [f"-G{k}={v}" for k, v in params.items()] + [str(RTL / f"{module}.v")]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env=tools.verilator_env())


@pytest.mark.parametrize("module,params", LINT, ids=[f"{m}-{i}" for i, (m, _) in enumerate(LINT)])
def test_lint_clean(module, params):
    r = _lint(module, params)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("module,params,rule", ILLEGAL,
                         ids=[f"{m}-{i}" for i, (m, _, _) in enumerate(ILLEGAL)])
def test_illegal_parameters_refused(module, params, rule):
    """Verilator and Icarus stop with the rule's name (the Yosys reading of the same rules
    is tests/test_rtl_params.py's, once its registry lists these modules)."""
    r = _lint(module, params)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and f"{module}_needs_{rule}" in out, out[-3000:]
    cmd = [str(tools.iverilog()), "-g2012", "-t", "null", "-y", str(RTL), "-s", module]
    cmd += [f"-P{module}.{k}={v}" for k, v in params.items()] + [str(RTL / f"{module}.v")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and f"{module}_needs_{rule}" in r.stdout + r.stderr, r.stdout + r.stderr


# ----------------------------------------------------------------------------- cf_wload alone

WLOAD_CASES = {
    # three memories: 3 words of 2 chunks (50 bits), 1 of 1 (7 bits), 5 of 3 (70 bits)
    "three": {"depths": [3, 1, 5], "widths": [50, 7, 70], "aw": 3},
    # one word of one chunk
    "single": {"depths": [1], "widths": [32], "aw": 1},
}


@pytest.mark.parametrize("case", list(WLOAD_CASES))
def test_wload_unit(case, tmp_path):
    from cocotb_tools.runner import get_runner

    spec = dict(WLOAD_CASES[case])
    spec["chunks"] = [weights.chunks_per_word(w) for w in spec["widths"]]
    n = sum(d * c for d, c in zip(spec["depths"], spec["chunks"]))
    rng = np.random.default_rng(len(case))
    loads = []
    for _ in range(2):
        words = [int(x) for x in rng.integers(0, 1 << 32, n, dtype=np.uint64)]
        loads.append({"words": words, "status": list(weights.fletcher(words))})
    # the Fletcher sums wrap: a word of all ones and a long stream exercise both carries
    loads[1]["words"][0] = 0xFFFFFFFF
    loads[1]["status"] = list(weights.fletcher(loads[1]["words"]))
    spec["loads"] = loads
    (tmp_path / "case.json").write_text(json.dumps(spec))
    wmax = max(spec["widths"])
    params = {"NMEM": len(spec["depths"]), "WMAX": wmax, "AW": spec["aw"],
              "DEPTHS": _vec(spec["depths"]), "CHUNKS": _vec(spec["chunks"])}
    result = tmp_path / "result.json"
    sys.path.insert(0, str(REPO / "sim"))
    try:
        with tools.verilator_environ():
            runner = get_runner("verilator")
            runner.build(sources=[RTL / "cf_wload.v"], hdl_toplevel="cf_wload",
                         build_dir=tmp_path / "build", parameters=params,
                         build_args=["-Wno-fatal"], timescale=("1ns", "1ps"))
            runner.test(test_module="cf_wload_tb", hdl_toplevel="cf_wload",
                        build_dir=tmp_path / "build", test_dir=tmp_path,
                        results_xml=str(tmp_path / "results.xml"),
                        extra_env={"CFGEN_WLOAD_CASE": str(tmp_path / "case.json"),
                                   "CFGEN_WLOAD_RESULT": str(result)})
    except SystemExit:
        pass
    finally:
        sys.path.remove(str(REPO / "sim"))
    xml = (tmp_path / "results.xml").read_text() if (tmp_path / "results.xml").is_file() else ""
    assert result.is_file() and json.loads(result.read_text()).get("passed"), xml[-3000:]
    assert "<failure" not in xml and "<error" not in xml, xml[-3000:]


# ----------------------------------------------------------------------------- rendering

def _lint_top(out: Path):
    man = json.loads((out / "rtl" / "manifest.json").read_text())
    files = [str(out / "rtl" / f) for f in man["sources"]]
    r = subprocess.run([str(tools.verilator()), "--lint-only", "-Wall", "--top-module", man["top"],
                        *files], capture_output=True, text=True, timeout=300,
                       env=tools.verilator_env(), cwd=out / "sim")
    assert r.returncode == 0, r.stdout + r.stderr
    return man


def _runtime_build(graph: Graph, out: Path, frames: int) -> Path:
    """A rendered run-time weights build folder with vectors and weights/ (as the build
    command writes it: weights after the RTL sources, signed with their hash)."""
    graph.runtime_weights = True
    G.write_vectors(graph, out, frames=frames, seed=1)
    rtl.render(graph, out, BOARD)
    weights.write(graph, out / "weights", weights.signature(out))
    return out


def test_rom_build_has_no_weight_port(tmp_path):
    graph = G.brief_chain(np.random.default_rng(0))
    out = tmp_path / "rom"
    G.write_vectors(graph, out, frames=1)
    man = rtl.render(graph, out, BOARD)
    top = (out / "rtl" / "cfgen_top.v").read_text()
    assert "s_axis_wgt" not in top and "cf_wload" not in top and "WRT" not in top
    assert "u_wload" not in top and "cf_ram" not in top
    assert not man["runtime_weights"] and "weights" not in man
    # the memory files are units.contents, word for word
    for node, tag in zip(graph.nodes, rtl.node_idents(graph)):
        for mem, fields, bits in units.contents(node):
            f = out / "rtl" / "mem" / f"{tag}_{rtl.SUFFIX[mem.role]}.hex"
            assert f.read_text().split() == rtl.pack_words(fields, bits), f
            # and the weight stream's chunks of the same words
            ch = weights.to_chunks(fields, bits)
            back = [sum(int(c) << (32 * k) for k, c in enumerate(row)) for row in ch]
            assert back == [int(w, 16) for w in f.read_text().split()], f
    _lint_top(out)


def test_runtime_render(tmp_path):
    graph = G.brief_chain(np.random.default_rng(0))
    graph.node("conv2").weight_mem = "uram"
    with pytest.raises(BuildError, match="UltraRAM.*runtime-weights"):
        rtl.render(graph, tmp_path / "rom", BOARD)
    out = _runtime_build(graph, tmp_path / "rw", frames=1)
    man = _lint_top(out)
    top = (out / "rtl" / "cfgen_top.v").read_text()
    for port in ("s_axis_wgt_tdata", "s_axis_wgt_tvalid", "s_axis_wgt_tready", "s_axis_wgt_tlast",
                 "m_axis_wstat_tdata", "m_axis_wstat_tvalid", "m_axis_wstat_tready",
                 "m_axis_wstat_tlast"):
        assert re.search(rf"(input|output)\s+wire\s+(\[31:0\]\s+)?{port}\b", top), port
    assert "assign s_axis_tready = in_tready && wl_loaded;" in top
    mems = weights.memories(graph)
    assert man["weights"]["nmem"] == len(mems) and man["weights"]["words"] == len(weights.stream(graph))
    assert [(m["node"], m["role"], m["depth"], m["width"]) for m in man["weights"]["memories"]] == \
        [(m.node, m.role, m.depth, m.width) for m in mems]
    assert f".NMEM({len(mems)})" in top and f".WMAX({max(m.width for m in mems)})" in top
    # every streamed memory is written through the port: no memory file, no FILE parameter
    assert sorted(p.name for p in (out / "rtl" / "mem").iterdir()) == []
    assert '"../rtl/mem/' not in top
    assert top.count(".WRT(1)") == sum(1 for n in graph.nodes if units.contents(n))
    mvu2 = next(u for u in man["nodes"][1]["units"] if u["module"] == "cf_mvu")
    assert mvu2["params"]["WSTYLE"] == 3 and mvu2["params"]["WRT"] == 1
    assert "cf_wload.v" in man["sources"] and "cf_ram.v" in man["sources"]


# ----------------------------------------------------------------------------- simulation

def test_chain_runtime_all_tests_and_a_flipped_bit(tmp_path):
    """Every node kind with run-time weights (conv2's weights at STYLE 3, UltraRAM): all five
    rtlsim tests bit exact, every load's status the checksum, frames held before the first
    load and during the reload; then one flipped bit: the status disagrees, the run fails."""
    graph = G.brief_chain(np.random.default_rng(0))
    graph.node("conv2").weight_mem = "uram"
    out = _runtime_build(graph, tmp_path / "rw", frames=4)
    res = rtlsim.run(out, frames=4, simulator="verilator", perf_frames=4, pattern_frames=2)
    assert_exact(res)
    w = res["weights"]
    assert w["status_ok"] and w["loads"] == 6        # one per test, the stall test's reload
    assert w["held_before_load"] == [True, True]      # the first load and the reload
    assert w["status"] == json.loads((out / "weights" / "weights.json").read_text())["checksum"]
    assert res["interval_cycles"] == res["predicted_interval_cycles"]

    # conv1's first weight word, bit 0: the status must disagree and the run fail
    flipped = rtlsim.run(out, frames=2, simulator="verilator", tests=["stalls"], flip_weight="0:0")
    assert not flipped["bit_exact"] and not flipped["weights"]["status_ok"]
    assert flipped["weights"]["flip"] == "0:0"
    assert "status" in flipped["tests"]["stalls"]["message"] or any(
        "status" in e for e in flipped["tests"]["stalls"].get("errors", []))
    with pytest.raises(CfgenError, match="word 0..275"):
        rtlsim.run(out, frames=2, tests=["stalls"], flip_weight="276:0")


def test_residual_runtime(tmp_path):
    """cf_resadd's parameters and a scale-MAC shortcut through the weight port."""
    graph = G.residual_chain(np.random.default_rng(3))
    out = _runtime_build(graph, tmp_path / "res", frames=3)
    assert any(m.role == "params" and graph.node(m.node).kind == "resadd"
               for m in weights.memories(graph))
    res = rtlsim.run(out, frames=3, simulator="verilator", tests=["perf", "stalls", "reset"],
                     perf_frames=3)
    assert_exact(res)
    assert res["weights"]["status_ok"] and res["weights"]["loads"] == 4


def test_weight_file_checked_before_the_simulator(tmp_path):
    graph = G.chain([G.conv("c1", Stream(4, 4, 3, "uint", 8), 4, 3, np.random.default_rng(1),
                             pad=1, pe=2, simd=3)], "tiny")
    out = _runtime_build(graph, tmp_path / "tiny", frames=1)
    hexf = out / "weights" / "weights.hex"
    good = hexf.read_text()
    hexf.write_text(good + "00000000\n")
    with pytest.raises(CfgenError, match="holds .* words, the build's weight port takes"):
        rtlsim.check_inputs(out, frames=1)
    hexf.write_text(good.replace(good.split()[0], "xyz", 1))
    with pytest.raises(CfgenError, match="line 1: 'xyz' is not a 32-bit hex word"):
        rtlsim.check_inputs(out, frames=1)
    hexf.write_text(good)
    man = json.loads((out / "weights" / "weights.json").read_text())
    (out / "weights" / "weights.json").write_text(json.dumps({**man, "signature": "0" * 64}))
    with pytest.raises(CfgenError, match="made for other hardware"):
        rtlsim.check_inputs(out, frames=1)
    with pytest.raises(CfgenError, match="no run-time weights"):
        rom = tmp_path / "rom"
        graph.runtime_weights = False
        G.write_vectors(graph, rom, frames=1)
        rtl.render(graph, rom, BOARD)
        rtlsim.check_inputs(rom, frames=1, flip_weight="0:0")


def test_digits_runtime_make_sim(tmp_path):
    """init digits --cf 4 -> build --runtime-weights -> make sim: bit exact, the status the
    checksum; CFGEN_WEIGHT_FLIP (a conv1 weight's sign bit) -> make sim fails."""
    from conftest import run_cli
    ckpt, out = tmp_path / "digits.pt", tmp_path / "build"
    run_cli("init", "digits", "--cf", 4, "-o", ckpt)
    run_cli("build", ckpt, "--board", "pynq-z2", "-o", out, "--frames", 4, "--runtime-weights")
    assert Graph.load(out).runtime_weights
    env = tools.verilator_env()
    env.pop("CFGEN_WEIGHT_FLIP", None)
    r = subprocess.run(["make", "sim", "FRAMES=4"], cwd=out, capture_output=True, text=True,
                       timeout=900, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads((out / "sim" / "results.json").read_text())
    assert_exact(res)
    assert res["weights"]["status_ok"] and res["weights"]["loads"] == 6
    assert "status = checksum" in r.stdout

    wj = json.loads((out / "weights" / "weights.json").read_text())
    conv1 = next(m for m in wj["memories"] if m["node"] == "conv1" and m["role"] == "weights")
    env["CFGEN_WEIGHT_FLIP"] = f"{conv1['offset']}:7"
    r = subprocess.run(["make", "sim", "FRAMES=4"], cwd=out, capture_output=True, text=True,
                       timeout=900, env=env)
    assert r.returncode != 0, r.stdout[-3000:]
    bad = json.loads((out / "sim" / "results.json").read_text())
    assert not bad["bit_exact"] and not bad["weights"]["status_ok"]
    assert bad["per_node"]["conv1"]["mismatches"] > 0       # the frames are wrong too
    assert "NOT BIT EXACT" in r.stdout
