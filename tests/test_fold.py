"""Folding (generator/hw/fold.py) and the analytic model (generator/hw/perf.py).

Fast tests: legality and its one-line errors, the three folding modes, round trips through a
folding file, the memory-mapping rules, the multiplier options, NIN CF-16 on pynq-z2.
Slow tests (really run Yosys and the RTL simulation, on two foldings of a small graph with
every node kind): predicted interval within 5 % of rtlsim, resources within 15 % of Yosys.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from generator.hw import fold, perf, units
from generator.hw.tech import xc7
from generator.core.errors import BuildError
from generator.hw.ir import Graph

from rtl_unit_tb import graphs as G

REPO = Path(__file__).resolve().parent.parent
BOARD = {"name": "pynq-z2", "part": "xc7z020clg400-1", "family": "xc7", "clock_mhz": 100,
         "resources": {"LUT": 53200, "FF": 106400, "BRAM36": 140, "DSP": 220}}


def chain(fold_=None, hw=8, c=(8, 16, 16, 16, 16)) -> Graph:
    return G.brief_chain(np.random.default_rng(0), hw=hw, c=c, fold=fold_)


# --------------------------------------------------------------------------- legality

def test_legal_options_follow_the_contract():
    g = chain()
    conv2, fc = g.node("conv2"), g.node("fc")
    assert fold.legal_pe(conv2) == [1, 2, 4, 8, 16]
    # divisors of C_in (8), and m*C_in for m | k*k (tap-parallel: 3 or 9 taps per beat)
    assert fold.legal_simd(conv2) == [1, 2, 4, 8, 24, 72]
    assert fold.legal_simd(g.node("conv1")) == [1, 3, 9, 27]
    assert fold.legal_simd(g.node("conv3")) == [1, 2, 4, 8, 16]     # k = 1: no taps to gather
    # scale MAC: SIMD divides n (= 4) or n divides SIMD, and SIMD divides C_in (16)
    assert fold.legal_simd(fc) == [1, 2, 4, 8, 16]
    assert fold.legal_pe(g.node("pool1")) == [1] and fold.legal_simd(g.node("gsum")) == [1]


@pytest.mark.parametrize("entry, words", [
    ({"conv2": {"pe": 3, "simd": 8}}, ["node conv2", "PE=3", "legal PE: 1, 2, 4, 8, 16"]),
    ({"conv2": {"pe": 4, "simd": 5}}, ["node conv2", "SIMD=5", "legal SIMD: 1, 2, 4, 8"]),
    ({"pool1": {"pe": 2, "simd": 1}}, ["node pool1", "PE and SIMD must be 1"]),
    ({"nope": {"pe": 1, "simd": 1}}, ["unknown node(s) nope", "conv1"]),
    ({"conv2": {"pe": "4", "simd": 8}}, ["node conv2", "pe must be a positive integer"]),
    ({"conv2": {"pe": 4, "simd": 8, "mult": "dsp"}}, ["node conv2", "int8"]),
    ({"conv1": {"pe": 2, "simd": 3, "mult": "magic"}}, ["node conv1", "mult must be one of"]),
    ({"conv2": {"pe": 4, "simd": 8, "foo": 1}}, ["node conv2", "unknown folding key"]),
])
def test_illegal_folding_files_explain_themselves(entry, words):
    with pytest.raises(BuildError) as exc:
        fold.fold(chain(), BOARD, folding=entry)
    msg = str(exc.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg


def test_tap_parallel_simd_error_and_cycles():
    with pytest.raises(BuildError) as exc:
        fold.fold(chain(), BOARD, folding={"conv2": {"pe": 4, "simd": 16}})
    msg = str(exc.value)
    assert "\n" not in msg
    assert "node conv2: SIMD=16 must divide its 8 input channels or be m*8 with m dividing " \
           "k*k=9" in msg and msg.endswith("legal SIMD: 1, 2, 4, 8, 24, 72")
    # NIN conv1 (32x32x3, k5 p2, 192 filters) at PE 4 x SIMD 75: 1024 pixels x NF 48 cycles
    nin1 = G.conv("conv1", G.Stream(32, 32, 3, "uint", 8), 192, 5, np.random.default_rng(1),
                  pad=2, pe=4, simd=75)
    assert fold.legal_simd(nin1) == [1, 3, 15, 75]
    assert units.cycles(nin1) == 49_152
    # cycles per window: max(NF*SF, R*SF), alternately R*SF and R*SF + 1 on a tie; m = SIMD/C_in
    # a multiple of k and NF*SF < k*k: the window generator emits whole window rows (T = k
    # taps per beat), so R = m/T row beats per wide beat and k*k/T = 5 beats per window
    assert units.conv.row_taps(nin1) == 1         # NF 48 x SF 1 >= 25 taps: whole pixels suffice
    nin1.pe, nin1.simd = 192, 15            # R 1, SF 5, NF 1: a tie, 5 and 6 cycles
    assert units.conv.row_taps(nin1) == 5
    assert units.cycles(nin1) == 1024 * 5.5
    nin1.pe = 48                            # NF 4, SF 5: 20 > 5
    assert units.cycles(nin1) == 1024 * 20
    nin1.pe, nin1.simd = 8, 75              # R 5, SF 1, NF 24 > 5
    assert units.cycles(nin1) == 1024 * 24
    r, info = perf.node_resources(nin1)
    parts = r.as_dict(detail=True)["parts"]
    assert parts["widen.widen_regs"]["FF"] == 2 * 25 * 24      # collect + hold: two windows
    assert any(p.startswith("swg.") for p in parts) and any(p.startswith("mvu.") for p in parts)
    g = chain({"conv2": (8, 24)})           # k3, m 3 = k: rows; R 1, SF 3, NF 2: 6 > 3
    assert units.conv.row_taps(g.node("conv2")) == 3
    assert units.cycles(g.node("conv2")) == 8 * 8 * 6
    g = chain({"conv2": (16, 72)})          # m 9: R 3, SF 1, NF 1: the generator's 3 row beats
    assert units.cycles(g.node("conv2")) == 8 * 8 * 3
    assert units.Widen(8, 9, 1, 9).window_cycles() == 9.5     # M = N = 9: a tie


def test_scalemac_simd_error_names_the_group_size():
    g = chain(c=(8, 16, 16, 24, 16))       # scale MAC over 24 channels, n = 4
    with pytest.raises(BuildError, match=r"node fc: SIMD=3 .* group size n=4; legal SIMD: 1, 2, 4, 8, 12, 24"):
        fold.fold(g, BOARD, folding={"fc": {"pe": 1, "simd": 3}})


def test_load_folding_reads_plain_and_wrapped_files(tmp_path):
    f = tmp_path / "f.json"
    f.write_text(json.dumps({"conv2": {"pe": 2, "simd": 4}}))
    assert fold.load_folding(f) == {"conv2": {"pe": 2, "simd": 4}}
    f.write_text(json.dumps({"folding": {"conv2": {"pe": 2, "simd": 4}}, "cycles": {}}))
    assert fold.load_folding(f) == {"conv2": {"pe": 2, "simd": 4}}
    f.write_text("{not json")
    with pytest.raises(BuildError, match="not a readable JSON folding file"):
        fold.load_folding(f)
    f.write_text(json.dumps([1, 2]))
    with pytest.raises(BuildError, match="must map node names"):
        fold.load_folding(f)


# --------------------------------------------------------------------------- modes

def test_cycles_follow_the_contract():
    g = chain({"conv2": (4, 8), "fc": (2, 4)})
    c2, fc = g.node("conv2"), g.node("fc")
    assert units.cycles(c2) == 8 * 8 * (9 * 8 // 8) * (16 // 4)
    assert units.cycles(fc) == 2 * 2 * (16 // 4) * (16 // 2)
    assert units.cycles(g.node("pool1")) == max(4 * 4 * 4, 8 * 8)
    pool2 = g.node("pool2")                 # average pool: C / SIMD channel chunks per tap
    assert units.cycles(pool2) == 2 * 2 * 9 * 16
    pool2.simd = 16
    assert units.cycles(pool2) == max(2 * 2 * 9, 4 * 4)
    assert units.cycles(g.node("gsum")) == 2 * 2


def test_fps_mode_meets_the_target_with_the_least_resources():
    g = chain()
    s = fold.fold(g, BOARD, fps=100e6 / 3000, mult="any")
    assert s["mode"] == "fps" and s["interval_cycles"] <= 3000 and s["fits_budget"]
    prices = {r: fold.START_PRICE[r] / BOARD["resources"][r] for r in perf.RESOURCES}
    for node in g.nodes:
        chosen = s["folding"][node.name]
        opts = fold.node_options(node, ("dsp", "dsp2", "lut"), (None, 198))
        cost = lambda o: sum(prices[r] * o.res[r] for r in prices)
        mine = [o for o in opts if (o.pe, o.simd) == (chosen["pe"], chosen["simd"])
                and o.mult == chosen.get("mult")]
        best = min(cost(o) for o in opts if o.cycles <= 3000)
        assert min(cost(o) for o in mine) <= best + 1e-12, node.name


def test_fps_mode_refuses_the_impossible():
    with pytest.raises(BuildError, match=r"node conv\d cannot go below \d+ cycles at its widest folding"):
        fold.fold(chain(), BOARD, fps=1e9)
    tiny_board = dict(BOARD, resources={"LUT": 3000, "FF": 6000, "BRAM36": 4, "DSP": 8})
    with pytest.raises(BuildError, match=r"does not fit pynq-z2 \(LUT"):
        fold.fold(chain(), tiny_board, fps=1e5)


def test_max_fps_mode_is_the_fastest_that_fits():
    g = chain()
    small = dict(BOARD, resources={"LUT": 8000, "FF": 16000, "BRAM36": 4, "DSP": 10})
    s = fold.fold(g, small, mult="any")
    assert s["mode"] == "max_fps" and s["fits_budget"]
    for r in perf.RESOURCES:
        assert s["resources"][r] <= s["budget"][r]
    # no achievable interval below it fits
    options = {n.name: fold.node_options(n, ("dsp", "dsp2", "lut"), (None, int(s["budget"]["DSP"])))
               for n in g.nodes}
    shell = {r: float(v) for r, v in perf.shell_resources(g).as_dict().items() if r in perf.RESOURCES}
    cap = {r: float(v) for r, v in small["resources"].items()}
    faster = sorted({o.cycles for opts in options.values() for o in opts
                     if o.cycles < s["interval_cycles"]})
    floor_t = max(min(o.cycles for o in opts) for opts in options.values())
    for t in [x for x in faster if x >= floor_t][-3:]:
        _, fits = fold._solve(options, t, s["budget"], shell, cap)
        assert not fits
    # a bigger board folds faster
    assert fold.fold(chain(), BOARD, mult="any")["interval_cycles"] < s["interval_cycles"]


def test_auto_multipliers_are_those_the_rtl_implements():
    assert fold.mult_styles("auto") == units.conv.MULT_STYLES == ("dsp", "dsp2")
    assert fold.mult_styles("any") == ("dsp", "dsp2", "lut")
    # a folding file's mult wins over --mult
    s = fold.fold(chain(), BOARD, folding={"conv1": {"pe": 4, "simd": 3, "mult": "dsp2"}}, mult="dsp")
    assert s["folding"]["conv1"]["mult"] == "dsp2" and s["multipliers"]["conv1"]["dsp"] == 6
    with pytest.raises(BuildError, match="--mult"):
        fold.mult_styles("magic")


def test_folding_file_round_trip_and_partial_files(tmp_path):
    s = fold.fold(chain(), BOARD, fps=100e6 / 5000)
    f = tmp_path / "folding.json"
    f.write_text(json.dumps(s["folding"]))
    g2 = chain()
    s2 = fold.fold(g2, BOARD, folding=fold.load_folding(f))
    assert s2["mode"] == "file"
    assert s2["folding"] == s["folding"] and s2["cycles"] == s["cycles"]
    # a partial file: the others get the cheapest folding that keeps the file's interval
    g3 = chain()
    s3 = fold.fold(g3, BOARD, folding={"conv2": {"pe": 16, "simd": 8}})
    assert s3["folding"]["conv2"] == {"pe": 16, "simd": 8}
    assert s3["interval_cycles"] == max(s3["cycles"].values())
    assert all(g3.node(n).pe * g3.node(n).simd >= 1 for n in s3["cycles"])


def test_summary_keys_and_util_option():
    s = fold.fold(chain(), BOARD, util=fold.parse_util("LUT=0.5,DSP=0.5"))
    for key in ("cycles", "interval_cycles", "latency_cycles", "fps_at_clock", "clock_mhz",
                "folding", "multipliers", "resources", "utilization", "nodes", "budget"):
        assert key in s
    assert s["budget"]["LUT"] == 0.5 * 53200 and s["budget"]["BRAM36"] == 0.9 * 140
    with pytest.raises(BuildError, match="--util"):
        fold.parse_util("LUT=lots")


# --------------------------------------------------------------------------- model pieces

def test_memory_mapping_follows_yosys_rules():
    # 2-deep FIFOs become RAM32M LUT RAM (6 bits each), 4 LUTs per cell
    m = xc7.map_memory(2, 64, rom=False, sync_read=False)
    assert m["style"] == "RAM32M_SDP" and m["LUT"] == 4 * 11 and m["BRAM36"] == 0
    # 64 deep: RAM64M (3 bits each)
    assert xc7.map_memory(64, 30, rom=False)["style"] == "RAM64M_SDP"
    # ROMs never go to LUT RAM; small ones become logic (cost 1/64 per bit)
    assert xc7.map_memory(288, 8, rom=True)["style"] == "logic"
    # 576 x 32 bits: one RAMB36 (1024 x 36)
    m = xc7.map_memory(576, 32, rom=True)
    assert m["style"].startswith("RAMB36") and m["BRAM36"] == 1.0
    # 2304 x 16: three RAMB18 (1024 x 18)
    assert xc7.map_memory(2304, 16, rom=True)["BRAM36"] == 1.5


def test_multiplier_styles():
    g = chain({"conv1": (8, 3)})
    n = g.node("conv1")
    r1, i1 = perf.node_resources(n, "dsp")
    r2, i2 = perf.node_resources(n, "dsp2")
    r3, i3 = perf.node_resources(n, "lut")
    assert i1["mult"]["dsp"] == 24 and i2["mult"]["dsp"] == 12 and i3["mult"]["dsp"] == 0
    # dsp2 with SIMD <= 4 has no lane tree: as many LUTs as dsp (Yosys: PE 96 x SIMD 3)
    assert r3.LUT > r2.LUT >= r1.LUT and r2.DSP < r1.DSP
    rc, ic = perf.node_resources(n, "dsp2", dsp_cap=5)
    assert ic["mult"]["dsp"] == 5 and ic["mult"]["lut_products"] == 24 - 10


def test_dsp2_model_counts_dsps_exactly():
    """dsp2: ceil(PE/2) * SIMD DSP48E1 (lane pairs share a DSP, an odd last lane one product
    per DSP), as Yosys maps rtl/cf_mvu.v MULT 1 (docs/FOLDING.md: PE 2 x SIMD 9 -> 9,
    PE 4 x SIMD 75 -> 150, PE 96 x SIMD 3 -> 144)."""
    for (pe, simd), dsp in {(2, 9): 9, (4, 75): 150, (96, 3): 144, (3, 9): 18, (1, 3): 3}.items():
        assert xc7.int8_products(pe * simd, "dsp2", pe=pe)["dsp"] == dsp, (pe, simd)
    g = chain({"conv1": (8, 3)})
    n = g.node("conv1")
    r, info = perf.node_resources(n, "dsp2")
    assert r.DSP == 12 and info["mult"]["dsp_products"] == 24
    # the IR carries the folding's choice into the model and the backends
    summary = fold.fold(g, BOARD, folding={"conv1": {"pe": 8, "simd": 3, "mult": "dsp2"}})
    assert g.node("conv1").mult == "dsp2" and summary["folding"]["conv1"]["mult"] == "dsp2"
    assert summary["nodes"][0]["resources"]["DSP"] == 12
    assert "dsp2" in units.conv.MULT_STYLES


def test_dsp2_mult_round_trips_through_graph_json(tmp_path):
    g = chain()
    g.node("conv1").mult = "dsp2"
    g.save(tmp_path)
    assert Graph.load(tmp_path).node("conv1").mult == "dsp2"
    assert Graph.load(tmp_path).node("conv2").mult == "dsp"


def test_latency_model_is_ordered():
    g = chain()
    fold.fold(g, BOARD, fps=100e6 / 5000)
    lat = perf.latency_cycles(g)
    interval = max(units.cycles(n) for n in g.nodes)
    assert interval < lat < 4 * sum(units.cycles(n) for n in g.nodes)


@pytest.mark.slow
def test_nin_cf16_pynq_z2(tmp_path):
    """NIN CF-16 on pynq-z2: the default folding fits the budget, the first layer's DSP
    budget is respected, and --fps 1000 gives a slower, smaller design."""
    from conftest import run_cli
    from generator.hw.boards import load_board
    from generator.model.checkpoint import load_checkpoint
    from generator.hw.lower import lower

    ck = tmp_path / "nin.pt"
    run_cli("init", "nin", "--cf", "16", "-o", ck)
    board = load_board("pynq-z2")
    g = lower(load_checkpoint(ck))
    s = fold.fold(g, board)
    assert s["fits_budget"] and s["resources"]["DSP"] <= 0.9 * 220
    assert s["interval_cycles"] == max(s["cycles"].values())
    g2 = lower(load_checkpoint(ck))
    s2 = fold.fold(g2, board, fps=300)
    assert s2["interval_cycles"] <= 100e6 / 300
    assert s2["resources"]["LUT"] <= s["resources"]["LUT"]


# --------------------------------------------------------------------------- against the tools

def _tools_or_skip():
    from generator.core import tools
    try:
        tools.yosys()
        tools.iverilog()
    except tools.ToolMissing as exc:
        pytest.skip(str(exc))


FOLDINGS = G.BRIEF_CHAIN_FOLDINGS


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.parametrize("name", list(FOLDINGS))
def test_model_agrees_with_rtlsim_and_yosys(name, tmp_path):
    """Predicted interval within 5 % of the RTL simulation, latency within 15 %, LUT and FF
    within 5 % of Yosys 0.70 synth_xilinx -abc9 (the calibration designs of
    bench/calibrate.py), BRAM36 and DSP within 15 % (or one unit)."""
    _tools_or_skip()
    from generator.flows import rtlsim, synth
    from generator.backends import rtl

    g = chain(FOLDINGS[name])
    out = tmp_path / name
    G.write_vectors(g, out, frames=4, seed=1)
    rtl.render(g, out, BOARD)
    s = fold.summarize(g, BOARD)
    sim = rtlsim.run(out, frames=2, simulator="icarus", tests=["perf"], perf_frames=4,
                     log=lambda *a: None)
    assert sim["bit_exact"]
    assert abs(s["interval_cycles"] - sim["interval_cycles"]) <= 0.05 * sim["interval_cycles"]
    assert abs(s["latency_cycles"] - sim["latency_cycles"]) <= 0.15 * sim["latency_cycles"]
    res = synth.run(out, log=lambda *a: None)
    for r in ("LUT", "FF"):
        assert abs(s["resources"][r] - res[r]) <= 0.05 * res[r], (r, s["resources"][r], res[r])
    for r in ("BRAM36", "DSP"):
        assert abs(s["resources"][r] - res[r]) <= max(1.0, 0.15 * res[r]), (r, s["resources"][r], res[r])


# --------------------------------------------------------------------------- honest refusal

TINY = {"name": "tiny", "part": "xc7z007sclg400-1", "family": "xc7", "clock_mhz": 100,
        "resources": {"LUT": 3000, "FF": 6000, "BRAM36": 2, "DSP": 10}}


def test_over_budget_foldings_are_refused_with_the_numbers():
    g = chain()
    s = fold.fold(g, BOARD)
    assert s["fits_budget"] and fold.budget_refusal(g, s, BOARD) is None
    s = fold.fold(g, TINY)
    assert not s["fits_budget"]
    msg = fold.budget_refusal(g, s, TINY)
    assert msg and "\n" not in msg and len(msg) < 400
    assert msg.startswith("brief_chain does not fit tiny: the cheapest folding found needs LUT ")
    assert "(budget 2,400 of 3,000)" in msg and "--over-budget" in msg
    # boards that have room are named
    assert "It would fit on " in msg and "pynq-z2" in msg


def test_build_refuses_an_over_budget_model_and_over_budget_builds_it(tmp_path, nin_cf16):
    from conftest import run_cli

    board = tmp_path / "tiny.json"
    board.write_text(json.dumps(dict(TINY, ps="zynq7", resources=dict(TINY["resources"], BRAM36=20))))
    r = run_cli("build", nin_cf16, "--board", board, "-o", tmp_path / "out", "--frames", 1,
                check=False)
    err = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(err) == 1 and err[0].startswith("error: nin does not fit tiny"), r.stderr
    assert "BRAM36" in err[0] and "weights" in err[0] and "Mbit on chip" in err[0]
    assert not (tmp_path / "out").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["tiny.json"]
    r = run_cli("build", nin_cf16, "--board", board, "-o", tmp_path / "out", "--frames", 1,
                "--over-budget", check=False)
    assert r.returncode == 0, r.stderr
    assert "exceed the folding budget" in r.stdout
    assert not json.loads((tmp_path / "out" / "report.json").read_text())["predicted"]["fits_budget"]


def test_folding_prefers_foldings_that_meet_the_clock():
    from generator.hw import pipeline

    # the model's dot-product path, fitted to the NIN estimate: 15 partial counts of 32 bits
    # (conv4 at SIMD 480) miss 10 ns even at PIPE 2, 3 of them (SIMD 96) do not
    assert abs(pipeline.mvu_path_ns("xnor", 480, True, 2) - 10.95) < 0.05
    assert not pipeline.mvu_meets("xnor", 480, True, 2, 100.0)
    assert pipeline.mvu_meets("xnor", 96, True, 2, 100.0)
    g = chain()
    s = fold.fold(g, BOARD)
    for n in g.nodes:
        if n.kind == "conv":
            assert n.pipe == units.conv.choose_pipe(n, 100.0)
            opts = fold.node_options(n, ("dsp", "dsp2"), (None,), 100.0)
            within = [o for o in opts if o.cycles <= s["interval_cycles"]]
            if any(o.meets for o in within):
                assert units.conv.meets_clock(n, 100.0), n.name
    # the pipelining follows the clock: faster clocks, more stages
    fast = chain()
    fold.fold(fast, dict(BOARD, clock_mhz=250))
    assert sum(n.pipe for n in fast.nodes if n.kind == "conv") >= \
        sum(n.pipe for n in g.nodes if n.kind == "conv")
