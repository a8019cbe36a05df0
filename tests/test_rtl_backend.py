"""RTL backend end to end: render -> lint -> cocotb simulation (Verilator and Icarus) ->
Yosys resource estimate, on the chain of every node kind, on a corrupted build (the
per-node checkers must point at the corrupted node), and on `init digits --cf 4` ->
`build` -> rtlsim over 10 frames with random stalls."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from generator.flows import rtlsim, synth
from generator.core import tools
from generator.backends import rtl
from generator.core.errors import BuildError
from generator.hw.ir import Graph, Stream
from rtl_unit_tb import graphs as G

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.sim
BOARD = {"name": "pynq-z2", "part": "xc7z020clg400-1", "family": "xc7", "clock_mhz": 100,
         "resources": {"LUT": 53200, "FF": 106400, "BRAM36": 140, "DSP": 220}}



@pytest.fixture(scope="module")
def chain_build(tmp_path_factory) -> Path:
    """The brief's chain of every node kind on 8x8x3 images, rendered with vectors."""
    out = tmp_path_factory.mktemp("chain") / "out"
    graph = G.brief_chain(np.random.default_rng(0))
    G.write_vectors(graph, out, frames=6, seed=1)
    rtl.render(graph, out, BOARD)
    return out


def test_render_layout(chain_build):
    out = chain_build
    man = json.loads((out / "rtl" / "manifest.json").read_text())
    for f in man["sources"] + man["sim_sources"]:
        assert (out / "rtl" / f).is_file(), f
    assert (out / "sim" / "cfgen_tb.v").is_file() and (out / "sim" / "cfgen_sim.py").is_file()
    assert [n["name"] for n in man["nodes"]] == ["conv1", "conv2", "pool1", "conv3", "pool2",
                                                  "conv4", "fc", "gsum"]
    assert man["input"]["tdata"] == 24 and man["output"]["tdata"] % 8 == 0
    mems = sorted(p.name for p in (out / "rtl" / "mem").iterdir())
    assert "conv1_w.hex" in mems and "fc_s.hex" in mems and "pool2_t.hex" in mems
    # every memory word has the same number of hex digits
    for p in (out / "rtl" / "mem").iterdir():
        lens = {len(x) for x in p.read_text().split()}
        assert len(lens) == 1, p


def test_generated_top_lint_clean(chain_build):
    man = json.loads((chain_build / "rtl" / "manifest.json").read_text())
    files = [str(chain_build / "rtl" / f) for f in man["sources"]]
    r = subprocess.run([str(tools.verilator()), "--lint-only", "-Wall", "--top-module", man["top"],
                        *files], capture_output=True, text=True, timeout=300,
                       env=tools.verilator_env(), cwd=chain_build / "sim")
    assert r.returncode == 0, r.stdout + r.stderr


def test_pack_words():
    words = rtl.pack_words(np.array([[1, -1, 5], [0, 2, -8]]), 4)
    assert words == ["5f1", "820"]
    assert rtl.pack_words(np.array([[1, 0, 1, 1, 0]]), 1) == ["0d"]


def test_illegal_folding_refused(tmp_path):
    graph = G.brief_chain(np.random.default_rng(0))
    graph.nodes[1].pe = 3
    with pytest.raises(BuildError, match="PE=3"):
        rtl.render(graph, tmp_path, BOARD)
    graph = G.brief_chain(np.random.default_rng(0))
    graph.nodes[6].simd = 3
    with pytest.raises(BuildError, match="SIMD=3"):
        rtl.render(graph, tmp_path, BOARD)


def test_dsp2_render_packs_weights_and_folds_the_offset(tmp_path):
    """mult = dsp2: cf_mvu MULT 1, lane 2j+1 holds w_hi - (w_lo < 0), parameters shifted by
    128 * sum(w) (docs/ARITHMETIC.md); weights of -128 are refused."""
    rng = np.random.default_rng(5)
    node = G.conv("c1", Stream(4, 4, 3, "uint", 8), 4, 3, rng, pad=1, pe=2, simd=3)
    graph = G.chain([node], "tiny")
    plain = rtl.plan_conv(0, node, "in", "c1")
    node.mult = "dsp2"
    plan = rtl.plan_conv(0, node, "in", "c1")
    mvu = dict(plan.units[1].params)
    assert mvu["MULT"] == 1 and dict(plain.units[1].params)["MULT"] == 0
    w = node.weights.astype(np.int64)
    word = int(plan.mems["c1_w.hex"][0], 16)        # nf 0, sf 0: channels 0, 1; taps 0..2
    lanes = [((word >> (8 * f)) & 255) for f in range(6)]
    lanes = [v - 256 if v > 127 else v for v in lanes]
    assert lanes[:3] == list(w[0, :3])
    assert lanes[3:] == list(w[1, :3] - (w[0, :3] < 0))
    tw = dict(plan.units[1].params)["TW"]
    pword = int(plan.mems["c1_p.hex"][0], 16)
    t0 = pword & ((1 << tw) - 1)
    t0 = t0 - (1 << tw) if t0 >> (tw - 1) else t0
    lo = 255 * np.where(w[0] < 0, w[0], 0).sum()
    hi = 255 * np.where(w[0] > 0, w[0], 0).sum()
    assert t0 == np.clip(node.thresholds[0], lo - 1, hi + 1) - 128 * w[0].sum()
    node.weights = node.weights.copy()
    node.weights[0, 0] = -128
    with pytest.raises(BuildError, match="dsp2"):
        rtl.render(graph, tmp_path, BOARD)


def _assert_exact(res):
    bad = {k: v for k, v in res["per_node"].items() if v["mismatches"]}
    failed = {k: t.get("message", "") for k, t in res["tests"].items() if not t["passed"]}
    assert res["bit_exact"], f"mismatching streams {bad}; failed tests {failed}"


def test_chain_verilator_all_tests(chain_build):
    """Random stalls, latency/interval, reset mid-frame, four back-pressure patterns."""
    res = rtlsim.run(chain_build, frames=6, simulator="verilator", perf_frames=4,
                     pattern_frames=2)
    _assert_exact(res)
    assert set(res["tests"]) == {"perf", "stalls", "reset", "backpressure", "tlast"}
    assert res["tests"]["tlast"]["padded_frames"] == res["tests"]["tlast"]["short_frames"] == 3
    saved = json.loads((chain_build / "sim" / "results.json").read_text())
    for key in ("frames", "bit_exact", "mismatches", "latency_cycles", "interval_cycles",
                "fps_at_clock", "simulator", "version"):
        assert key in saved, key
    assert saved["interval_cycles"] == res["predicted_interval_cycles"]
    assert saved["fps_at_clock"] == pytest.approx(100e6 / saved["interval_cycles"])
    assert res["tests"]["backpressure"]["patterns"] == {
        "always_ready": 2, "alternate": 2, "one_in_8": 2, "long_stalls": 2}
    for name, v in res["per_node"].items():
        assert v["beats"] > 0, name

    # Corrupt one weight bit of conv2: rerun (memories load at run time, no rebuild);
    # the conv2 checker must be the first to fail, and the CLI must exit non-zero.
    wfile = chain_build / "rtl" / "mem" / "conv2_w.hex"
    good = wfile.read_text()
    lines = good.split()
    lines[3] = f"{int(lines[3], 16) ^ 1:0{len(lines[3])}x}"
    wfile.write_text("\n".join(lines) + "\n")
    try:
        proc = subprocess.run([sys.executable, "-m", "generator.flows.rtlsim", str(chain_build),
                               "--frames", "2", "--tests", "stalls"], cwd=REPO,
                              capture_output=True, text=True, timeout=900,
                              env=tools.verilator_env())
        assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
        bad = json.loads((chain_build / "sim" / "results.json").read_text())
        assert not bad["bit_exact"]
        per = bad["per_node"]
        assert per["input"]["mismatches"] == 0 and per["conv1"]["mismatches"] == 0
        assert per["conv2"]["mismatches"] > 0
        assert "NOT BIT EXACT" in proc.stdout
    finally:
        wfile.write_text(good)


def test_chain_icarus(chain_build, tmp_path):
    out = tmp_path / "icarus"
    shutil.copytree(chain_build, out, ignore=shutil.ignore_patterns("build_*", "results*"))
    res = rtlsim.run(out, frames=2, simulator="icarus", tests=["perf", "stalls", "reset"],
                     perf_frames=3)
    _assert_exact(res)
    assert res["simulator"] == "icarus" and res["version"] != "unknown"
    assert res["interval_cycles"] == res["predicted_interval_cycles"]


def test_synth_small(tmp_path):
    """Yosys resource estimate with per-unit figures on a two-node graph."""
    rng = np.random.default_rng(3)
    n1 = G.conv("c1", Stream(4, 4, 3, "uint", 8), 4, 3, rng, pad=1, pe=2, simd=3)
    n2 = G.maxpool("mp", n1.out, 2, rng)
    graph = G.chain([n1, n2], "tiny")
    out = tmp_path / "tiny"
    G.write_vectors(graph, out, frames=1)
    rtl.render(graph, out, BOARD)
    res = synth.run(out, timeout=900, abc9=False)
    saved = json.loads((out / "synth" / "resources.json").read_text())
    for key in ("LUT", "FF", "BRAM36", "DSP", "units", "nodes", "utilisation_pct"):
        assert key in saved, key
    assert res["LUT"] > 0 and res["FF"] > 0
    assert res["DSP"] >= 1          # int8 multipliers
    assert set(res["nodes"]) == {"c1", "mp"}
    assert {"u0_swg", "u0_mvu", "u1_swg", "u1_pool"} <= set(res["units"])
    unit_lut = sum(u["LUT"] for u in res["units"].values())
    assert unit_lut <= res["LUT"]
    assert res["utilisation_pct"]["LUT"] == pytest.approx(100 * res["LUT"] / 53200, abs=0.1)


def test_synth_timeout(tmp_path):
    rng = np.random.default_rng(3)
    graph = G.chain([G.conv("c1", Stream(4, 4, 3, "uint", 8), 4, 3, rng, pad=1)], "tiny")
    out = tmp_path / "tiny"
    G.write_vectors(graph, out, frames=1)
    rtl.render(graph, out, BOARD)
    from generator.core.errors import CfgenError
    with pytest.raises(CfgenError, match="timed out"):
        synth.run(out, timeout=1, abc9=False)


def test_digits_end_to_end(tmp_path_factory):
    """init digits --cf 4 -> build -> rtlsim: 10 frames back to back with random stalls."""
    from conftest import run_cli
    root = tmp_path_factory.mktemp("digits_rtl")
    ckpt = root / "digits_cf4.pt"
    out = root / "build"
    run_cli("init", "digits", "--cf", 4, "-o", ckpt)
    run_cli("build", ckpt, "--board", "pynq-z2", "-o", out, "--frames", 10)
    assert (out / "rtl" / "cfgen_top.v").is_file()
    res = rtlsim.run(out, frames=10, simulator="verilator", tests=["perf", "stalls"])
    _assert_exact(res)
    assert res["tests"]["stalls"]["frames_checked"] == 10
    graph = Graph.load(out)
    assert res["per_node"][graph.nodes[-1].name]["beats"] == 10
    report = json.loads((out / "report.json").read_text())
    assert res["interval_cycles"] == report["predicted"]["interval_cycles"]
