"""HLS backend: generated project layout, Tcl, name sanitizing, refusals, and bit-exact C
simulation of whole graphs (hand-built random chains, the digits model end to end, NIN
CF-16 on a few frames) with per-layer mismatch localisation."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from generator.flows import csim
from generator.hw import units
from generator.backends import hls
from generator.core.errors import BuildError
from generator.hw.ir import Graph, Stream

sys.path.insert(0, str(Path(__file__).parent / "hls_unit_tb"))
import hls_graphs as graphs  # noqa: E402

pytestmark = pytest.mark.hls

REPO = Path(__file__).resolve().parents[1]
BOARDS = REPO / "boards"


def board(name: str) -> dict:
    p = BOARDS / f"{name}.json"
    if p.is_file():
        return json.loads(p.read_text())
    return {"name": name, "part": "xc7z020clg400-1", "family": "xc7", "clock_mhz": 100}


def demo(tmp: Path, seed=1, frames=6, pe_simd=True, names=None):
    rng = np.random.default_rng(seed)
    g, px, tr = graphs.demo_chain(rng, frames=frames, h=9, w=8, pe_simd=pe_simd)
    if names:
        for n, new in zip(g.nodes, names):
            n.name = new
    graphs.write_vectors(tmp, g, px, tr)
    g.save(tmp)
    return g


# --------------------------------------------------------------------------- no compiler needed

def test_sanitize():
    assert hls.sanitize("conv1") == "conv1"
    assert hls.sanitize("conv 1/a") == "conv_1_a"
    assert hls.sanitize("2nd") == "n_2nd"
    assert hls.sanitize("int") == "n_int"
    assert hls.sanitize("a__b__") == "a_b"
    assert hls.sanitize("") == "n"
    assert hls.unique_idents(["a b", "a-b", "A_B"]) == ["a_b", "a_b_2", "A_B_3"]
    assert hls.c_string('a"b\\c') == '"a\\042b\\134c"'


def test_packing():
    w = np.array([[1, 0, 1, 1], [0, 1, 0, 0]])
    assert hls.pack_matrix(w, 1, 2, 1) == [[0b01, 0b11, 0b10, 0b00]]
    assert hls.pack_matrix(w, 1, 4, 2) == [[0b1101], [0b0010]]
    assert hls.pack_matrix(np.array([[-1, 2]]), 8, 2, 1) == [[0x02ff]]
    assert hls.per_lane([0, 1, 2, 3, 4, 5], 2) == [[0, 2, 4], [1, 3, 5]]
    assert hls.lane_bits([1, 0, 0, 1], 2) == [0b01, 0b10]
    assert hls.rom_literal(5, 8) == "0x5u" and hls.rom_literal(1 << 40, 48).endswith("ull")
    assert hls.rom_literal((1 << 64) | 3, 70) == "{{0x3ull, 0x1ull}}"
    assert hls.srom_literal(-(1 << 63), 64) == "(-9223372036854775807ll - 1)"
    with pytest.raises(BuildError):
        hls.rom_literal(256, 8)
    with pytest.raises(BuildError):
        hls.srom_literal(128, 8)


def test_render_layout_tcl_and_clean_top(tmp_path):
    g = demo(tmp_path)
    hls_dir = hls.render(g, tmp_path, board("pynq-z2"))
    top = "cf_demo"
    for rel in ["include/cfgen.h", "include/cf_swg.h", "sim/hls_stream.h", "sim/ap_axi_sdata.h", f"src/{top}.cpp",
                f"src/{top}.h", f"src/{top}_trace.h", "tb/tb.cpp", "project.tcl", "csim.tcl", "csynth.tcl",
                "cosim.tcl", "export.tcl", "run_hls.tcl", "run_hls.sh", "manifest.json"] + \
            [f"src/nodes/{n.name}.h" for n in g.nodes]:
        assert (hls_dir / rel).is_file(), rel
    src = (hls_dir / f"src/{top}.cpp").read_text()
    for pragma in ["INTERFACE axis port=in_stream", "INTERFACE axis port=out_stream",
                   "INTERFACE s_axilite port=reps bundle=control", "INTERFACE s_axilite port=return",
                   "#pragma HLS DATAFLOW"]:
        assert pragma in src
    # No dynamic memory / recursion helpers in the synthesizable sources.
    for f in list((hls_dir / "include").glob("cf_*.h")) + list((hls_dir / "src").rglob("*.h")):
        if f.name == "cf_tbio.h":
            continue
        text = f.read_text()
        assert not re.search(r"\b(new|malloc|std::vector|std::deque)\b", text), f.name
    # The synthesizable top (no -DCF_TRACE) has no trace taps after preprocessing.
    ap = csim.find_ap_types()
    pre = subprocess.run([csim.find_cxx(), "-std=c++14", "-E", "-P", f"-I{hls_dir / 'sim'}",
                          f"-I{hls_dir / 'include'}", f"-I{hls_dir / 'src'}", "-isystem", str(ap),
                          str(hls_dir / f"src/{top}.cpp")], capture_output=True, text=True, check=True).stdout
    body = pre[pre.index(f"void {top}("):]
    assert "sim_tap" not in body and "cf_trace_" not in body
    # Widths and counts come from the IR.
    m = json.loads((hls_dir / "manifest.json").read_text())
    assert m["top"] == top and m["input"]["bits"] == 24 and m["input"]["axi_bits"] == 24
    assert m["output"]["bits"] == g.output.beat_bits and m["output"]["axi_bits"] % 8 == 0
    assert [n["name"] for n in m["nodes"]] == [n.name for n in g.nodes]
    conv1 = (hls_dir / "src/nodes/conv1.h").read_text()
    n1 = g.nodes[0]
    assert f"cf::IntDot<{n1.simd}, 8, false, 8, {n1.acc_bits}>" in conv1
    assert f"cf::ThresholdAct<{n1.pe}, {n1.out.c // n1.pe}, {n1.thr_bits}>" in conv1
    # Tcl: part, clock, IP export, block design for the board.
    proj = (hls_dir / "project.tcl").read_text()
    assert "set_part xc7z020clg400-1" in proj and "create_clock -period 10.0" in proj
    assert '-csimflags "-DCF_TRACE"' in proj
    assert "export_design -format ip_catalog" in (hls_dir / "export.tcl").read_text()
    bd = (tmp_path / "vivado" / "bd.tcl").read_text()
    assert "processing_system7" in bd and "tul.com.tw:pynq-z2:part0:1.0" in bd
    assert "cfgen:hls:cf_demo:1.0" in bd and "axi_dma" in bd
    assert "c_m_axis_mm2s_tdata_width {8}" in bd and "conv_in" in bd    # 3-byte pixels <- 1-byte DMA
    assert "S_TDATA_NUM_BYTES {1} CONFIG.M_TDATA_NUM_BYTES {3}" in bd
    assert [hls.dma_bits(b) for b in (8, 24, 320, 472, 2048, 4096)] == [8, 8, 64, 8, 1024, 1024]
    assert "write_bitstream" in bd and ".hwh" in bd and "PCW_FPGA0_PERIPHERAL_FREQMHZ {100}" in bd


def test_render_mpsoc_board(tmp_path):
    g = demo(tmp_path, frames=1)
    b = board("kv260")
    hls.render(g, tmp_path, b)
    bd = (tmp_path / "vivado" / "bd.tcl").read_text()
    assert "zynq_ultra_ps_e" in bd and "PSU__USE__S_AXI_GP2 {1}" in bd
    assert f"PL0_REF_CTRL__FREQMHZ {{{int(b['clock_mhz'])}}}" in bd
    assert f"set_part {b['part']}" in (tmp_path / "hls" / "project.tcl").read_text()


def test_render_refusals(tmp_path):
    g = demo(tmp_path, frames=1)
    bad = Graph.load(tmp_path)
    bad.nodes[1].pe = 3                          # does not divide 32 output channels
    with pytest.raises(BuildError, match="PE=3 must divide"):
        hls.render(bad, tmp_path / "a", {})
    bad = Graph.load(tmp_path)
    bad.nodes[0].thr_bits = 2                    # thresholds do not fit the IR's width
    with pytest.raises(BuildError, match="thresholds"):
        hls.render(bad, tmp_path / "b", {})
    bad = Graph.load(tmp_path)
    bad.nodes[3].inp = Stream(4, 4, 16, "bit", 1)    # chain broken
    with pytest.raises(BuildError, match="does not match"):
        hls.render(bad, tmp_path / "c", {})
    g.nodes[2].out = Stream(3, 3, 32, "bit", 1)  # wrong pooled size
    with pytest.raises(BuildError):
        hls.render(g, tmp_path / "d", {})


def test_csim_cli_errors(tmp_path, capsys):
    assert csim.main([str(tmp_path / "missing")]) == 2
    assert "manifest.json" in capsys.readouterr().err
    rc = csim.main(["--check-vitis"])
    out = capsys.readouterr().out
    assert "vitis_hls" in out and rc in (0, 1)


# --------------------------------------------------------------------------- C simulation

def test_demo_chain_bit_exact_and_mismatch_localised(tmp_path):
    g = demo(tmp_path, frames=6)
    hls.render(g, tmp_path, board("pynq-z2"))
    res = csim.run_csim(tmp_path, werror=True, quiet=True)
    assert res["bit_exact"], csim.summary(res)
    assert res["frames"] == 6 and res["compiler_warnings"] == 0 and res["batch"] > 1
    assert set(res["mismatches"]) == {n.name for n in g.nodes}
    assert all(res["values"][n.name] == 6 * n.out.h * n.out.w * n.out.c for n in g.nodes)
    saved = json.loads((tmp_path / "csim" / "results.json").read_text())
    for key in ("frames", "bit_exact", "mismatches", "compiler", "seconds"):
        assert key in saved

    # Corrupt one weight word of conv2 (PE lane 2: channels 0/1 have constant thresholds):
    # C simulation must blame conv2, not conv1.
    hdr = tmp_path / "hls" / "src" / "nodes" / "conv2.h"
    text = hdr.read_text()
    i = text.index("conv2_weights[")
    for _ in range(3):
        i = text.index("{0x", i) + 1
    k = text.index("u", i)
    hdr.write_text(text[:i] + hex(int(text[i:k], 16) ^ 0xff) + text[k:])
    res = csim.run_csim(tmp_path, quiet=True)
    assert not res["bit_exact"]
    assert res["mismatches"]["conv1"] == 0 and res["mismatches"]["conv2"] > 0
    assert res["first_mismatch"]["node"] == "conv2"
    assert "conv2" in csim.summary(res) and "NOT BIT EXACT" in csim.summary(res)


@pytest.mark.parametrize("simd1, simd2", [(9, 144), (27, 48)])
def test_tap_parallel_chain_bit_exact(tmp_path, simd1, simd2):
    """SIMD = m*C_in with m a multiple of k = 3 and NF*SF < k*k: row taps (sliding_window<..., TAPS = 3>
    emits one window row of 3 pixels per beat -> widen_taps R = m/3 -> mvau). The int8 first
    layer (C_in 3) with m = 3 (R 1, SF 3) or m = 9 (R 3, SF 1), the xnor conv2 (C_in 16)
    with m = 9 (SF 1) or m = 3 (SF 3); the folding changes no value, so the golden vectors
    still apply. (The pixel path, m not a multiple of k, is unit-tested: c_x_k4px.)"""
    g = demo(tmp_path, seed=3, frames=3)
    # NF = 1 (PE = C_out): the replay (SF beats) is shorter than k*k whole pixels, so the
    # window generator emits rows (units.conv.row_taps)
    g.nodes[0].pe, g.nodes[0].simd = g.nodes[0].out.c, simd1
    g.nodes[1].pe, g.nodes[1].simd = g.nodes[1].out.c, simd2
    hls.render(g, tmp_path, board("pynq-z2"))
    manifest = {n["name"]: n for n in json.loads((tmp_path / "hls" / "manifest.json").read_text())["nodes"]}
    for node, c in (("conv1", 3), ("conv2", 16)):
        n = g.nodes[0 if node == "conv1" else 1]
        m, bits = n.simd // c, n.inp.bits
        text = (tmp_path / "hls" / "src" / "nodes" / f"{node}.h").read_text()
        assert f"cf::sliding_window<3, 1, 1, {c}, {n.inp.h}, {n.inp.w}, {bits}, {c}, 3>" in text, node
        assert f"cf::widen_taps<{3 * c * bits}, {m // 3}, {9 // m}, 1, " in text, node
        assert units.conv.row_taps(n) == 3 and manifest[node]["row_taps"] == 3
        # the unit plan's figures (the RTL widener's: a tie of NF*SF = R*SF costs 1/2 cycle)
        assert manifest[node]["cycles_per_frame"] == units.cycles(n)
        assert manifest[node]["pipeline_depth"] == units.pipeline_depth(n)
    res = csim.run_csim(tmp_path, werror=True, quiet=True)
    assert res["bit_exact"], csim.summary(res)
    assert res["mismatches"]["conv1"] == 0 and res["mismatches"]["conv2"] == 0


def test_row_taps_rule():
    """units.conv.row_taps (both backends' TAPS): k for a tap-parallel conv (SIMD = m*C_in, m > 1)
    with m % k == 0, k > 1 and NF*SF < k*k, else 1."""
    from generator.hw.ir import ConvNode

    def node(c, k, simd, pe=4):
        return ConvNode(name="c", inp=Stream(8, 8, c, "bit", 1), out=Stream(8, 8, 4, "bit", 1), pe=pe, simd=simd,
                        k=k, stride=1, pad=k // 2, pad_value=0, matrix="xnor", weights=None, acc_bits=8,
                        act="threshold")
    cases = [((3, 3, 9), 3), ((3, 3, 27), 3), ((3, 3, 3), 1), ((6, 3, 3), 1), ((4, 4, 8), 1), ((4, 4, 16), 4),
             ((4, 4, 32), 4), ((2, 5, 10), 5), ((2, 5, 50), 5), ((4, 1, 4), 1), ((4, 2, 8), 2)]
    for (c, k, simd), want in cases:
        n = node(c, k, simd)
        assert units.conv.row_taps(n) == want, (c, k, simd)
    # rows only when whole pixels (k*k beats per window) would be slower than the replay
    assert units.conv.row_taps(node(3, 3, 9, pe=1)) == 1        # NF 4 x SF 3 = 12 >= 9
    assert units.conv.row_taps(node(3, 3, 9, pe=2)) == 3        # NF 2 x SF 3 = 6 < 9


def test_unfolded_chain_with_odd_names(tmp_path):
    names = ["conv 1", "int", "2nd-layer", "pool.2", "x__y", "conv-1", "fc w", "out"]
    g = demo(tmp_path, seed=7, frames=5, pe_simd=False, names=names)
    hls.render(g, tmp_path, {"name": "bare"})
    idents = [n["ident"] for n in json.loads((tmp_path / "hls" / "manifest.json").read_text())["nodes"]]
    assert idents == ["conv_1", "n_int", "n_2nd_layer", "pool_2", "x_y", "conv_1_2", "fc_w", "n_out"]
    res = csim.run_csim(tmp_path, frames=4, batch=3, werror=True, quiet=True)
    assert res["bit_exact"], csim.summary(res)
    assert res["frames"] == 4 and set(res["mismatches"]) == set(names)


# --------------------------------------------------------------------------- end to end

def _cli(*args, cwd):
    r = subprocess.run([sys.executable, "-m", "generator", *args], cwd=cwd, capture_output=True, text=True)
    assert r.returncode == 0, f"{args}: {r.stdout[-2000:]}\n{r.stderr[-4000:]}"
    return r


def test_e2e_digits_cf4(tmp_path):
    pytest.importorskip("torch")
    _cli("init", "digits", "--cf", "4", "-o", str(tmp_path / "x.pt"), cwd=REPO)
    out = tmp_path / "build"
    _cli("build", str(tmp_path / "x.pt"), "--board", "pynq-z2", "-o", str(out), "--data", "digits",
         "--frames", "24", cwd=REPO)
    r = subprocess.run([sys.executable, "-m", "generator.flows.csim", str(out), "--frames", "24", "--werror"], cwd=REPO,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "BIT EXACT" in r.stdout
    res = json.loads((out / "csim" / "results.json").read_text())
    assert res["bit_exact"] and res["frames"] == 24 and not any(res["mismatches"].values())
    assert len(res["mismatches"]) == len(Graph.load(out).nodes)


@pytest.mark.slow
def test_e2e_nin_cf16_few_frames(tmp_path):
    pytest.importorskip("torch")
    _cli("init", "nin", "--cf", "16", "-o", str(tmp_path / "nin.pt"), cwd=REPO)
    out = tmp_path / "build"
    _cli("build", str(tmp_path / "nin.pt"), "--board", "pynq-z2", "-o", str(out), "--frames", "3", cwd=REPO)
    t0 = time.monotonic()
    res = csim.run_csim(out, quiet=True)
    assert res["bit_exact"], csim.summary(res)
    assert res["frames"] == 3 and len(res["mismatches"]) == len(Graph.load(out).nodes)
    print(f"NIN CF-16 csim: {res['seconds_per_frame']:.3f} s/frame, compile {res['compile_seconds']} s, "
          f"total {time.monotonic() - t0:.1f} s")
