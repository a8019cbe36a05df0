"""Fully-connected weights streamed from DRAM (generator/hw/dram.py, rtl/dram/cf_axi_wread.v,
rtl/dram/cf_mvu_dram.v, docs/FOLDING.md "DRAM-streamed layers").

A binary fully-connected layer (a ConvNode whose window is its whole 2 x 2 x 32 input map,
as lower.py lowers a linear layer on a flattened map; 128 inputs, 64 outputs, thresholds or
relu_offset) is simulated with cocotb + Verilator: its weight image sits in a cocotbext-axi
AxiRamRead (the simulated DRAM) whose read-data channel is throttled by a pause pattern
(1 beat in 4 or 8 cycles, or every cycle: the bandwidth limit) or delayed by a read
latency before every burst (LATENCIES), cf_axi_wread bursts it from a
base address once per batch and cf_mvu_dram computes batches of B = 1 and B = 8 frames.

* every output beat is bit exact against golden.run_node, also with random stalls on the
  input, the output and the DRAM's read channel, and across a mid-run reset;
* the measured interval per frame (cycle stamps of the output beats in the steady state)
  matches dram.plan(...).interval(bytes per cycle) within INTERVAL_TOL, DRAM-bound and
  compute-bound, for both batch sizes;
* lint (`verilator --lint-only -Wall`) of both modules over parameter sets, and their
  elaboration-time parameter checks;
* the model itself: bytes, cycles and bandwidth per batch, and the image layout.

Two Verilator builds (one per batch size), about 30 s in all with ccache warm.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from generator.core import tools
from generator.core.errors import BuildError
from generator.hw import dram, golden
from generator.hw.boards import as_board, load_board
from generator.hw.ir import Stream
from generator.hw.streams import to_beats
from rtl_unit_tb import graphs as G

REPO = Path(__file__).resolve().parent.parent
RTL = REPO / "rtl"
#: the DRAM-streaming units: outside rtl/*.v (the RTL backend's library, which every build
#: folder copies) until a backend renders DRAM-streamed layers
DRAM_RTL = RTL / "dram"
#: measured interval per frame vs the model: relative tolerance (the simulated DRAM adds a
#: few idle cycles per burst, the model none)
INTERVAL_TOL = 0.03
BASE = 0x1000          # the weight image's base address (aligned to a burst: 16 x 8 bytes)
DW = 64                # the AXI data width (pynq-z2's HP port)
#: read latency of the simulated DRAM, cycles before the first beat of every burst
LATENCIES = [24]

# batch -> the folding and activation simulated; rates: DRAM beats per cycle (1/4: 2 bytes
# per cycle, DRAM-bound at B = 1; 1/8: 1 byte per cycle, DRAM-bound at B = 8; 1: full port)
CASES = {
    1: {"act": "threshold", "pe": 4, "simd": 8, "rates": [4, 1]},     # WW 32 < DW: 2 words a beat
    8: {"act": "relu_offset", "pe": 8, "simd": 16, "rates": [8, 1],   # WW 128: 2 beats a word
        "pipe": 1},
}


def fc_node(act: str, seed: int = 3):
    """A 2 x 2 x 32 bit map through a fully-connected xnor layer to 64 outputs."""
    rng = np.random.default_rng(seed)
    node = G.conv("fc", Stream(2, 2, 32, "bit", 1), 64, 2, rng, act=act, frac_bits=2)
    return node, rng


def sim_board(period: int) -> dict:
    """A board whose usable DRAM bandwidth is the simulated DRAM's: one 64-bit beat every
    `period` cycles at 100 MHz (the efficiency stands for the pause pattern)."""
    return {"name": "simdram", "clock_mhz": 100, "dram_port_bits": DW,
            "dram_peak_mbps": 10**6, "dram_efficiency": 1.0 / period}


# ----------------------------------------------------------------------------- the model

def test_model_figures():
    node, _ = fc_node("threshold")
    b = load_board("pynq-z2")
    assert b.dram_bytes_per_cycle == pytest.approx(6.0)
    p = dram.plan(node, b, pe=4, simd=8, batch=1)
    assert (p.sf, p.nf, p.words, p.word_bits) == (16, 16, 256, 32)
    assert (p.words_per_beat, p.beats, p.bytes_per_batch) == (2, 128, 1024)
    assert p.compute_cycles == 256
    assert p.dram_cycles(6.0) == pytest.approx(1024 / 6)
    assert p.interval(6.0) == 256 and p.bound(6.0) == "compute"
    p8 = dram.plan(node, b, pe=8, simd=16, batch=8)
    assert (p8.beats_per_word, p8.beats, p8.bytes_per_batch) == (2, 128, 1024)
    assert p8.compute_cycles == 8 * 64
    # one byte per cycle: DRAM-bound at 1024 cycles per batch, 128 per frame, 100 MB/s
    assert p8.interval(1.0) == 128 and p8.bound(1.0) == "dram"
    assert p8.bandwidth_mbps(1.0, 100) == pytest.approx(100.0)
    s = dram.summary(p8, b)
    assert s["bandwidth_available_mbps"] == 600.0 and s["bytes_per_batch"] == 1024
    assert s["interval_cycles"] == 64 and s["bound"] == "compute"


def test_batch_divides_the_traffic():
    """vgg7's fc1 (8192 x 1024 bits, 1 MiB) on pynq-z2 (600 MB/s, 6 bytes per cycle): the
    weights take 174,763 cycles per pass, so B frames share that."""
    from generator.hw.ir import ConvNode
    rng = np.random.default_rng(0)
    node = ConvNode("fc1", Stream(4, 4, 512, "bit", 1), Stream(1, 1, 1024, "bit", 1), k=4,
                    weights=rng.integers(0, 2, (1024, 8192), dtype=np.uint8), acc_bits=15,
                    thresholds=np.zeros(1024, np.int64), direction=np.ones(1024, np.int8),
                    thr_bits=2)
    b = load_board("pynq-z2")
    bpc = b.dram_bytes_per_cycle
    ivs = {B: dram.plan(node, b, 64, 64, B).interval(bpc) for B in (1, 8, 64)}
    assert ivs[1] == pytest.approx(8192 * 1024 / 8 / 6)
    assert ivs[8] == pytest.approx(ivs[1] / 8)
    assert ivs[64] == pytest.approx(ivs[1] / 64)     # still above NW = 16 x 128 = 2048
    assert dram.best_batch(node, b, 64, 64) == 64    # none reaches NW: the largest tried
    assert dram.plan(node, b, 64, 64, 128).interval(bpc) == 2048    # compute-bound
    assert dram.best_batch(node, b, 64, 64, target=30000) == 8


def test_only_binary_fully_connected_layers():
    node, rng = fc_node("threshold")
    conv = G.conv("c", Stream(4, 4, 8, "bit", 1), 8, 3, rng, pad=1)
    assert "not fully connected" in dram.eligible(conv)
    with pytest.raises(BuildError, match="SIMD=3 must divide its 32 input channels"):
        dram.plan(node, None, pe=4, simd=3, batch=1)
    with pytest.raises(BuildError, match="batch"):
        dram.plan(node, None, pe=4, simd=8, batch=0)
    assert dram.eligible(node) is None


def test_image_layout():
    node, _ = fc_node("threshold")
    w = node.weights.astype(np.int64)
    for pe, simd in ((4, 8), (8, 16), (1, 1), (64, 32)):
        p = dram.plan(node, None, pe, simd, 1)
        img = dram.image(node, p)
        assert len(img) == p.bytes_per_batch
        bits = np.unpackbits(np.frombuffer(img, np.uint8), bitorder="little")
        beat = p.port_bits
        for word in (0, p.words - 1, p.words // 3):
            nf, sf = divmod(word, p.sf)
            if p.word_bits >= beat:
                start = word * p.beats_per_word * beat
            else:
                start = (word // p.words_per_beat) * beat + (word % p.words_per_beat) * p.word_bits
            got = bits[start:start + p.word_bits].reshape(p.pe, p.simd)
            want = w[nf * pe:(nf + 1) * pe, sf * simd:(sf + 1) * simd]
            assert (got == want).all(), (pe, simd, word)


# ----------------------------------------------------------------------------- lint

MVU_LINT = [{}, {"B": 1}, {"B": 8, "SIMD": 8, "CI": 8, "KD": 32, "PE": 4, "CO": 8},
            {"ACT": 1, "OB": 6, "TW": 10, "FRAC": 2}, {"B": 3, "SIMD": 2, "KD": 8, "PE": 1,
                                                       "CO": 1},
            {"SIMD": 8, "CI": 8, "KD": 8, "PE": 4, "CO": 4, "B": 1},
            {"PIPE": 1}, {"PIPE": 1, "B": 1, "ACT": 1, "OB": 6, "TW": 10}]
READ_LINT = [{}, {"WW": 16, "NW": 10}, {"WW": 100, "DW": 32, "NW": 7}, {"BURST": 4, "FD": 8},
             {"NW": 1, "BURST": 1, "FD": 2}, {"WW": 3, "DW": 8, "NW": 5, "AW": 16},
             {"WW": 512, "DW": 128, "NW": 4096}]


def _lint(top, params):
    cmd = [str(tools.verilator()), "--lint-only", "-Wall", f"-I{RTL}", f"-I{DRAM_RTL}",
           "--top-module", top]
    cmd += [f"-G{k}={v}" for k, v in params.items()] + [str(DRAM_RTL / f"{top}.v")]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          env=tools.verilator_env())


def _icarus(top, params):
    cmd = [str(tools.iverilog()), "-g2012", "-t", "null", "-y", str(RTL), "-y", str(DRAM_RTL),
           "-s", top] + [f"-P{top}.{k}={v}" for k, v in params.items()] + [str(DRAM_RTL / f"{top}.v")]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _yosys(top, params, tmp):
    over = ", ".join(f".{k}({v})" for k, v in params.items())
    (tmp / "wrap.v").write_text(f"module cfp_wrap;\n    {top} #({over}) u_dut ();\nendmodule\n")
    files = " ".join(str(f) for f in [RTL / "cf_fifo.v", *sorted(DRAM_RTL.glob("*.v")),
                                      tmp / "wrap.v"])
    return subprocess.run([str(tools.yosys()), "-q", "-p",
                           f"read_verilog {files}; hierarchy -check -top cfp_wrap"],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.sim
@pytest.mark.parametrize("top,params", [("cf_mvu_dram", p) for p in MVU_LINT] +
                         [("cf_axi_wread", p) for p in READ_LINT])
def test_lint_clean(top, params, tmp_path):
    r = _lint(top, params)
    assert r.returncode == 0, r.stdout + r.stderr
    for r in (_icarus(top, params), _yosys(top, params, tmp_path)):
        assert r.returncode == 0 and "_needs_" not in r.stdout + r.stderr, r.stdout + r.stderr


ILLEGAL = [
    ("cf_mvu_dram", {"SIMD": 3}, "SIMD_dividing_CI"),
    ("cf_mvu_dram", {"CI": 6, "SIMD": 2}, "CI_dividing_KD"),
    ("cf_mvu_dram", {"PE": 3}, "PE_dividing_CO"),
    ("cf_mvu_dram", {"B": 0}, "KD_CO_CI_B_OB_TW_at_least_1_and_FRAC_at_least_0"),
    ("cf_mvu_dram", {"OB": 2}, "ACT_0_with_OB_1_or_ACT_1"),
    ("cf_mvu_dram", {"PIPE": 2}, "PIPE_0_or_1"),
    ("cf_axi_wread", {"DW": 48}, "DW_a_power_of_2_from_8_to_1024"),
    ("cf_axi_wread", {"BURST": 128, "DW": 512, "FD": 128}, "BURST_1_to_256_within_4KB"),
    ("cf_axi_wread", {"FD": 8}, "FD_a_power_of_2_at_least_BURST_and_2"),
    ("cf_axi_wread", {"NW": 0}, "WW_and_NW_at_least_1"),
    ("cf_axi_wread", {"AW": 8}, "AW_16_to_64"),
]


@pytest.mark.sim
@pytest.mark.parametrize("top,params,rule", ILLEGAL)
def test_parameter_checks(top, params, rule, tmp_path):
    """Each illegal instance stops Verilator, Icarus and Yosys naming its rule, and only it."""
    for r in (_lint(top, params), _icarus(top, params), _yosys(top, params, tmp_path)):
        out = r.stdout + r.stderr
        assert r.returncode != 0 and f"{top}_needs_{rule}" in out, out
        assert set(re.findall(rf"\b{top}_needs_\w+?(?=\W)", out)) == {f"{top}_needs_{rule}"}, out


@pytest.mark.sim
def test_every_rule_has_a_case():
    """Every `_needs_` rule of the two modules has an illegal case above."""
    rules = set()
    for f in DRAM_RTL.glob("*.v"):
        rules |= set(re.findall(r"\b(cf_\w+?_needs_\w+)\s+u_bad\b", f.read_text()))
    tested = {f"{t}_needs_{r}" for t, _, r in ILLEGAL}
    assert rules == tested


# ----------------------------------------------------------------------------- simulation

TOP = """`default_nettype none
module dram_fc_top (
    input  wire clk, input wire rst,
    input  wire [{ci}-1:0] s_axis_tdata, input wire s_axis_tvalid, output wire s_axis_tready,
    output wire [{ow}-1:0] m_axis_tdata, output wire m_axis_tvalid, input wire m_axis_tready,
    output wire m_axis_tlast, output wire [31:0] m_axis_tuser,
    output wire [31:0] m_axi_araddr, output wire [7:0] m_axi_arlen, output wire [2:0] m_axi_arsize,
    output wire [1:0] m_axi_arburst, output wire [3:0] m_axi_arcache, output wire [2:0] m_axi_arprot,
    output wire [0:0] m_axi_arid, output wire m_axi_arvalid, input wire m_axi_arready,
    input  wire [{dw}-1:0] m_axi_rdata, input wire [1:0] m_axi_rresp, input wire m_axi_rlast,
    input  wire [0:0] m_axi_rid, input wire m_axi_rvalid, output wire m_axi_rready,
    output wire err
);
    reg [31:0] cyc;                      // cycle stamp of every output beat (tuser)
    always @(posedge clk) cyc <= rst ? 32'd0 : cyc + 32'd1;
    wire w_valid, w_ready;
    wire [{ww}-1:0] w_data;
    wire [{co}*{ob}-1:0] y;
    cf_axi_wread #(.AW(32), .DW({dw}), .WW({ww}), .NW({nw}), .BURST(16), .FD(64)) u_rd (
        .clk(clk), .rst(rst), .base(32'h{base:x}),
        .m_axi_araddr(m_axi_araddr), .m_axi_arlen(m_axi_arlen), .m_axi_arsize(m_axi_arsize),
        .m_axi_arburst(m_axi_arburst), .m_axi_arcache(m_axi_arcache), .m_axi_arprot(m_axi_arprot),
        .m_axi_arid(m_axi_arid), .m_axi_arvalid(m_axi_arvalid), .m_axi_arready(m_axi_arready),
        .m_axi_rdata(m_axi_rdata), .m_axi_rresp(m_axi_rresp), .m_axi_rlast(m_axi_rlast),
        .m_axi_rid(m_axi_rid), .m_axi_rvalid(m_axi_rvalid), .m_axi_rready(m_axi_rready),
        .m_valid(w_valid), .m_ready(w_ready), .m_data(w_data), .err(err));
    cf_mvu_dram #(.SIMD({simd}), .PE({pe}), .KD({kd}), .CO({co}), .CI({ci}), .B({batch}),
                  .ACT({act}), .OB({ob}), .TW({tw}), .FRAC({frac}), .PIPE({pipe}),
                  .PFILE("{pfile}")) u_mvu (
        .clk(clk), .rst(rst),
        .s_valid(s_axis_tvalid), .s_ready(s_axis_tready), .s_data(s_axis_tdata),
        .w_valid(w_valid), .w_ready(w_ready), .w_data(w_data),
        .m_valid(m_axis_tvalid), .m_ready(m_axis_tready), .m_data(y));
    assign m_axis_tdata = {{{pad}y}};
    assign m_axis_tlast = 1'b1;
    assign m_axis_tuser = cyc;
endmodule
`default_nettype wire
"""


def _render(node, p: dram.DramPlan, folder: Path) -> dict:
    """The test top, the parameter memory file and the bench's configuration."""
    par = dram.param_words(node, p)
    prw = p.tw + 1
    pfile = folder / "fc_p.hex"
    digits = -(-p.pe * prw // 4)
    with open(pfile, "w") as f:
        for row in par:
            v = sum(int(x) << (i * prw) for i, x in enumerate(row))
            f.write(f"{v:0{digits}x}\n")
    outw = p.co * p.ob
    ow = -(-outw // 8) * 8
    (folder / "dram_fc_top.v").write_text(TOP.format(
        ci=p.ci, ow=ow, dw=DW, ww=p.word_bits, nw=p.words, base=BASE, simd=p.simd, pe=p.pe,
        kd=p.kd, co=p.co, batch=p.batch, act=0 if p.act == "threshold" else 1, ob=p.ob,
        tw=p.tw, frac=p.frac, pfile=pfile, pipe=p.pipe, pad=f"{ow - outw}'d0, " if ow > outw else ""))
    return {"image": dram.image(node, p).hex(), "base": BASE, "batch": p.batch}


def _simulate(tmp: Path, batch: int) -> tuple[dict, dict, object]:
    from cocotb_tools.runner import get_runner

    case = CASES[batch]
    node, rng = fc_node(case["act"])
    p = dram.plan(node, sim_board(1), case["pe"], case["simd"], batch, pipe=case.get("pipe", 0))
    cfg = _render(node, p, tmp)
    # whole batches: a frame leaves with its batch
    frames = {"perf": 6 * batch if batch > 1 else 8, "stall": 3 * batch if batch > 1 else 5,
              "reset": 2 * batch}
    data = {}
    for k, n in frames.items():
        x = rng.integers(0, 2, (n, 2, 2, 32)).astype(np.int64)
        data[k] = {"in": [str(v) for v in to_beats(x, node.inp)],
                   "out": [str(v) for v in to_beats(golden.run_node(node, x), node.out)]}
    cfg.update(frames=frames, data=data, rates=case["rates"], pixels=4, seed=batch,
               latencies=LATENCIES)
    cfg_path = tmp / "cfg.json"
    cfg_path.write_text(json.dumps(cfg))
    results = tmp / "results.json"
    with tools.verilator_environ():
        runner = get_runner("verilator")
        runner.build(sources=[tmp / "dram_fc_top.v", DRAM_RTL / "cf_axi_wread.v",
                              DRAM_RTL / "cf_mvu_dram.v", RTL / "cf_fifo.v"],
                     hdl_toplevel="dram_fc_top", build_dir=tmp / "build",
                     build_args=["-Wno-fatal"], timescale=("1ns", "1ps"),
                     log_file=tmp / "build.log")
        try:
            runner.test(test_module="test_dram_fc", testcase="dram_fc_bench",
                        hdl_toplevel="dram_fc_top", build_dir=tmp / "build", test_dir=tmp,
                        extra_env={"DRAM_FC_CFG": str(cfg_path), "DRAM_FC_OUT": str(results)},
                        log_file=tmp / "test.log")
        except SystemExit as e:
            pytest.fail(f"cocotb bench failed ({e.code}):\n"
                        + (tmp / "test.log").read_text(errors="replace")[-4000:])
    if not results.exists():
        pytest.fail("no results:\n" + (tmp / "test.log").read_text(errors="replace")[-4000:])
    return json.loads(results.read_text()), cfg, (node, p)


@pytest.mark.sim
@pytest.mark.parametrize("batch", sorted(CASES))
def test_dram_fc_rtl(tmp_path, batch):
    res, cfg, (node, p) = _simulate(tmp_path, batch)
    assert res["mismatches"] == 0, res
    assert res["err"] == 0
    for run in ("stall", "reset"):
        assert res[run]["frames"] == cfg["frames"][run] and res[run]["bad"] == 0, res[run]
    lines = []
    for period in CASES[batch]["rates"]:
        bpc = as_board(sim_board(period)).dram_bytes_per_cycle
        pp = dram.plan(node, sim_board(period), p.pe, p.simd, batch)
        model = pp.interval(bpc)
        got = res["perf"][str(period)]
        assert got["bad"] == 0
        lines.append(f"B={batch} DRAM {bpc:g} B/cycle: measured {got['interval']:.1f}, model "
                     f"{model:.1f} cycles/frame ({pp.bound(bpc)}-bound)")
        assert abs(got["interval"] - model) <= INTERVAL_TOL * model, lines[-1]
    for lat in cfg["latencies"]:
        # AxiRamRead serves one burst at a time and queues 2 read beats ahead: a 16-beat
        # burst costs 16 + L - 2 cycles, so the simulated DRAM gives 16 beats per that
        # (a slower port, not a pipelined latency: the read master's outstanding bursts
        # cannot hide it there, only the compute bound can)
        board = sim_board(1)
        board["dram_efficiency"] = 16 / (16 + lat - 2)
        pp = dram.plan(node, board, p.pe, p.simd, batch)
        bpc = as_board(board).dram_bytes_per_cycle
        model = pp.interval(bpc)
        got = res["perf"][f"L{lat}"]
        assert got["bad"] == 0
        lines.append(f"B={batch} DRAM latency {lat} cycles per burst ({bpc:.2f} B/cycle): "
                     f"measured {got['interval']:.1f}, model {model:.1f} cycles/frame "
                     f"({pp.bound(bpc)}-bound)")
        assert abs(got["interval"] - model) <= INTERVAL_TOL * model, lines[-1]
    print("\n".join(lines))
    (tmp_path / "intervals.txt").write_text("\n".join(lines) + "\n")


# ----------------------------------------------------------------------------- cocotb bench
# (runs inside the simulator: `runner.test(test_module="test_dram_fc", ...)`)

try:
    import cocotb
except ImportError:     # pragma: no cover - the sim tests need cocotb anyway
    cocotb = None

if cocotb is not None:
    @cocotb.test()
    async def dram_fc_bench(dut):
        from cocotb.clock import Clock
        from cocotb.triggers import RisingEdge, ClockCycles
        from cocotbext.axi import (AxiReadBus, AxiRamRead, AxiStreamBus, AxiStreamFrame,
                                   AxiStreamSink, AxiStreamSource)

        cfg = json.loads(Path(os.environ["DRAM_FC_CFG"]).read_text())
        rnd = random.Random(cfg["seed"])
        batch, pixels = cfg["batch"], cfg["pixels"]
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        class SlowRam(AxiRamRead):
            """AxiRamRead whose first beat of every burst (the read master's bursts start
            on multiples of 16 beats) comes `latency` cycles late (the model serves one
            burst at a time, so the latency also costs bandwidth)."""
            latency = 0

            async def _read(self, address, length):
                if self.latency and (address - cfg["base"]) % (16 * length) == 0:
                    await ClockCycles(dut.clk, self.latency)
                return await super()._read(address, length)

        ram = SlowRam(AxiReadBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=1 << 16)
        ram.write(cfg["base"], bytes.fromhex(cfg["image"]))
        src = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst,
                              byte_lanes=1)
        sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst,
                             byte_lanes=1)
        for log in (ram.log, src.log, sink.log):
            log.setLevel("WARNING")

        async def reset():
            dut.rst.value = 1
            await ClockCycles(dut.clk, 4)
            dut.rst.value = 0
            await ClockCycles(dut.clk, 2)

        async def run(name, limit=400000):
            """Send the run's frames, collect as many outputs: (beats, stamps, mismatches)."""
            d = cfg["data"][name]
            xs, ys = [int(v) for v in d["in"]], [int(v) for v in d["out"]]
            n = len(ys)
            for f in range(n):
                await src.send(AxiStreamFrame(xs[f * pixels:(f + 1) * pixels]))
            got, stamps = [], []
            for _ in range(limit):
                while not sink.empty():
                    fr = sink.recv_nowait()
                    got.append(fr.tdata[0])
                    stamps.append(fr.tuser[0] if isinstance(fr.tuser, list) else fr.tuser)
                if len(got) >= n:
                    break
                await RisingEdge(dut.clk)
            bad = sum(1 for a, b in zip(got, ys) if a != b) + (n - len(got))
            return got, stamps, bad

        out = {"mismatches": 0, "perf": {}}
        # steady-state interval at each DRAM rate: no stalls, batches back to back
        for period in cfg["rates"] + [f"L{n}" for n in cfg.get("latencies", [])]:
            lat = int(period[1:]) if isinstance(period, str) else 0
            slow = 1 if lat else period
            ram.r_channel.set_pause_generator(
                None if slow == 1 else (i % slow != 0 for i in itertools.count()))
            ram.r_channel.pause = False     # a generator left it as it was
            ram.latency = lat
            await reset()
            got, stamps, bad = await run("perf")
            firsts = stamps[batch::batch] if batch > 1 else stamps[1:]
            iv = (firsts[-1] - firsts[0]) / (batch * (len(firsts) - 1))
            out["perf"][str(period)] = {"interval": iv, "bad": bad, "stamps": stamps}
            out["mismatches"] += bad
        ram.latency = 0

        # random stalls on the input, the output and the DRAM read data
        def stalls(p):
            while True:
                yield rnd.random() < p
        ram.r_channel.set_pause_generator(stalls(0.4))
        src.set_pause_generator(stalls(0.3))
        sink.set_pause_generator(stalls(0.3))
        await reset()
        got, _, bad = await run("stall")
        out["stall"] = {"frames": len(got), "bad": bad}
        out["mismatches"] += bad

        # reset in the middle of a batch, then clean frames
        for f in range(batch + 1):
            d = [int(v) for v in cfg["data"]["stall"]["in"]]
            await src.send(AxiStreamFrame(d[f * pixels:(f + 1) * pixels]))
        await ClockCycles(dut.clk, 150)
        await reset()
        while not sink.empty():
            sink.recv_nowait()
        got, _, bad = await run("reset")
        out["reset"] = {"frames": len(got), "bad": bad}
        out["mismatches"] += bad
        out["err"] = int(dut.err.value)
        Path(os.environ["DRAM_FC_OUT"]).write_text(json.dumps(out))


# ----------------------------------------------------------------------------- folding

#: a small Zynq-7000 board: block RAM for the convolution, not for the 256 kbit FC layer
SMALL = {"name": "small", "part": "xc7z020clg400-1", "family": "xc7", "clock_mhz": 100,
         "resources": {"LUT": 20000, "FF": 40000, "BRAM36": 6, "DSP": 40}}


def fc_graph():
    from generator.hw.ir import ConvNode  # noqa: F401  (the graph's node kind)
    rng = np.random.default_rng(5)
    a = G.conv("conva", Stream(4, 4, 64, "bit", 1), 64, 3, rng, pad=1, pad_value=0)
    b = G.conv("fc", a.out, 256, 4, rng)
    g = G.chain([a, b], "fc_graph")
    G.calibrate(g, rng)
    return g


def test_fold_streams_the_fc_layer_only_when_block_ram_does_not_fit():
    from generator.hw import fold

    g = fc_graph()
    roomy = dict(SMALL, resources=dict(SMALL["resources"], BRAM36=140))
    s = fold.fold(g, roomy)
    assert s["fits_budget"] and "dram" not in s and g.node("fc").weight_mem == "auto"
    assert fold.dram_refusal(g, s, roomy) is None and fold.budget_refusal(g, s, roomy) is None

    g = fc_graph()
    s = fold.fold(g, SMALL)
    fc = g.node("fc")
    assert s["fits_budget"] and fc.weight_mem == "dram" and s["folding"]["fc"]["batch"] == fc.batch
    assert s["folding"]["fc"]["weight_mem"] == "dram"
    d = s["dram"]
    assert set(d["layers"]) == {"fc"} and d["bandwidth_available_mbps"] == 600.0
    assert 0 < d["bandwidth_mbps"] <= 600.0
    assert s["cycles"]["fc"] == d["layers"]["fc"]["interval_cycles"] <= s["interval_cycles"]
    assert s["block_ram_only"]["fits_budget"] is False
    # the model's numbers are the ones the summary shows
    p = dram.plan(fc, as_board(SMALL))
    assert s["cycles"]["fc"] == p.cycles(6.0)
    line = fold.budget_refusal(g, s, SMALL)
    assert line == fold.dram_refusal(g, s, SMALL) and "\n" not in line and len(line) <= 700
    assert line.startswith("fc_graph fits small only with the weights of fc (batch ")
    for part in ("frames/s at 100 MHz predicted", "MB/s of the 600 MB/s", "no backend renders",
                 "--over-budget builds the on-chip folding anyway"):
        assert part in line, line
    table = fold.fold_table(s, SMALL)
    assert "fc: weights streamed from DRAM, batch" in table and "DRAM bandwidth:" in table
    assert any("stream from DRAM" in w for w in fold.fold_warnings(s))
    # the IR carries the choice
    g.validate()
    # --over-budget (uram=False): block RAM alone, as before
    g2 = fc_graph()
    s2 = fold.fold(g2, SMALL, uram=False)
    assert "dram" not in s2 and not s2["fits_budget"] and g2.node("fc").weight_mem == "auto"
    assert "streamed from DRAM" not in fold.budget_refusal(g2, s2, SMALL)


def test_slow_dram_makes_the_folding_batch():
    """At 0.1 byte per cycle one pass over the 32 KiB of weights takes 327,680 cycles; the
    folding batches frames to keep the layer near the convolution's interval."""
    from generator.hw import fold

    slow = dict(SMALL, dram_peak_mbps=10, dram_efficiency=1.0)
    g = fc_graph()
    s = fold.fold(g, slow)
    fc = g.node("fc")
    assert s["fits_budget"] and fc.weight_mem == "dram" and fc.batch > 1
    v = s["dram"]["layers"]["fc"]
    assert v["bound"] == "dram" and v["batch"] == fc.batch
    assert v["interval_cycles"] == pytest.approx(32768 / 0.1 / fc.batch, rel=1e-3)
    assert s["dram"]["bandwidth_mbps"] <= 10.0 + 1e-6


def test_ir_fields(tmp_path):
    from generator.hw.ir import Graph

    g = fc_graph()
    fc = g.node("fc")
    fc.weight_mem, fc.batch, fc.pe, fc.simd = "dram", 4, 8, 16
    g.validate()
    g.save(tmp_path)
    back = Graph.load(tmp_path).node("fc")
    assert (back.weight_mem, back.batch) == ("dram", 4)
    fc.weight_mem = "auto"
    with pytest.raises(BuildError, match="batch 4 needs DRAM-streamed weights"):
        g.validate()
    fc.weight_mem, fc.batch = "dram", 0
    with pytest.raises(BuildError, match="batch 0 must be an integer"):
        g.validate()
    fc.batch = 1
    g.node("conva").weight_mem = "dram"
    with pytest.raises(BuildError, match="needs a binary fully-connected layer"):
        g.validate()


def test_vgg7_on_pynq_z2(tmp_path_factory):
    """The build's answer for vgg7 on pynq-z2: the convolution weights alone nearly fill the
    block RAM, so even with fc1 streamed from DRAM the default budget (90 %) is short; the
    refusal says by how much and which --util admits it, and with that the build refuses
    with the DRAM folding's frames/s and bandwidth (no backend renders it yet)."""
    from conftest import _shared, run_cli
    from generator.hw import fold
    from generator.hw.lower import lower
    from generator.model.qonnx_io import load_model_file

    ckpt = _shared(tmp_path_factory, "vgg7_cf4.pt",
                   lambda p: run_cli("init", "vgg7", "--cf", 4, "-o", p))
    graph = lower(load_model_file(ckpt))
    b = load_board("pynq-z2")
    import copy
    g = copy.deepcopy(graph)
    s = fold.fold(g, b)
    line = fold.budget_refusal(g, s, b)
    assert not s["fits_budget"] and "with_dram" in s
    assert "With the weights of fc1 (batch" in line and "still needs BRAM36" in line
    m = re.search(r"--util (BRAM36=[0-9.]+) would admit", line)
    assert m, line
    g = copy.deepcopy(graph)
    s = fold.fold(g, b, util=fold.parse_util(m.group(1)))
    line = fold.budget_refusal(g, s, b)
    assert s["fits_budget"] and s["dram"]["layers"]["fc1"]["bytes_per_batch"] == 1 << 20
    assert line.startswith("vgg7 fits pynq-z2 only with the weights of fc1 (batch"), line
    assert "of the 600 MB/s of DRAM bandwidth" in line
    print(line)
