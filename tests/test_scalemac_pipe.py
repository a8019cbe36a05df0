"""cf_scalemac PIPE 1 (the read register after the weight / scale / bias reads).

These tests render unit graphs (tests/rtl_unit_tb/graphs.py) with the backend, PIPE set in
the IR as the folding sets it (ScaleMacNode.pipe). Each graph is simulated (cocotb + Verilator) at PIPE 0 and
PIPE 1 from the same vectors: PIPE 1 must be bit exact under random valid / ready stalls and
a mid-frame reset, keep the interval of PIPE 0 and add exactly one cycle of latency per
scale MAC on the path. Lint: PIPE 1 instances are clean under `verilator --lint-only -Wall`;
PIPE outside 0..1 stops elaboration with the rule's name.
"""

from __future__ import annotations

import re
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

SMAC_FILES = [REPO / "rtl" / f for f in ("cf_scalemac.v", "cf_rom.v", "cf_fifo.v")]


# ----------------------------------------------------------------------------- lint

def _lint(params):
    cmd = [str(tools.verilator()), "--lint-only", "-Wall", f"-I{REPO / 'rtl'}",
           "--top-module", "cf_scalemac"] + [f"-G{k}={v}" for k, v in params.items()]
    return subprocess.run(cmd + [str(f) for f in SMAC_FILES], capture_output=True, text=True,
                          timeout=300, env=tools.verilator_env())


@pytest.mark.parametrize("params", [
    {"PIPE": 1}, {"PIPE": 0},
    {"PIPE": 1, "SIMD": 8, "N": 2, "PE": 2, "CO": 4, "CI": 16},
    {"PIPE": 1, "SIMD": 2, "N": 8, "CI": 16, "RELU": 0, "OB": 64},
    {"PIPE": 1, "SIMD": 1, "N": 1, "CI": 4, "PE": 2, "CO": 2, "ISIGNED": 1, "FD": 1},
    {"PIPE": 1, "SIMD": 4, "N": 4, "CI": 4, "CO": 2, "PE": 2, "FD": 128},   # SF = NF = 1
    # NIN CF-16 conv9 (u10_smac): the instance the read register is for
    {"PIPE": 1, "IB": 17, "ISIGNED": 1, "SIMD": 4, "PE": 1, "CI": 192, "CO": 10, "N": 16,
     "SCW": 12, "GW": 27, "ZW": 41, "BW": 33, "OB": 41, "FD": 1},
], ids=lambda p: "-".join(f"{k}{v}" for k, v in p.items()))
def test_lint_clean(params):
    r = _lint(params)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("tool", ["verilator", "icarus", "yosys"])
@pytest.mark.parametrize("pipe", [2, -1, 3])
def test_bad_pipe_refused(pipe, tool):
    """PIPE outside 0..1 stops Verilator, Icarus and Yosys (as tests/test_rtl_params.py runs
    them) with this rule only."""
    from test_rtl_params import TOOLS
    r = TOOLS[tool]("cf_scalemac", {"PIPE": pipe})
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert set(re.findall(r"\bcf_scalemac_needs_\w+?(?=\W)", out)) == \
        {"cf_scalemac_needs_PIPE_0_or_1"}, out


@pytest.mark.parametrize("tool", ["verilator", "icarus", "yosys"])
def test_pipe1_elaborates(tool):
    from test_rtl_params import TOOLS
    r = TOOLS[tool]("cf_scalemac", {"PIPE": 1, "SIMD": 2, "N": 8, "CI": 16, "FD": 1})
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "_needs_" not in out, out


# ----------------------------------------------------------------------------- simulation

def graph_chain(rng):
    """The three scale-MAC shapes (n = 1 with 4 whole groups per beat, SIMD = n = 3 without
    ReLU, SIMD 1 < n = 4: a group over 4 beats, CPG > 1) chained on a signed full-range
    input; output FIFO depths 2, 8 and 2."""
    inp = Stream(3, 4, 12, "int", 6)
    n1 = G.scalemac("sm_n1", inp, 6, 1, rng, pe=3, simd=4, scale_bits=2, w_max=3)
    n2 = G.scalemac("sm_n3_simd3", n1.out, 4, 3, rng, pe=4, simd=3, relu=False, scale_bits=3,
                    w_max=3)
    n3 = G.scalemac("sm_n4_simd1", n2.out, 4, 4, rng, pe=1, simd=1, scale_bits=4)
    g = G.chain([n1, n2, n3], "smac_chain")
    G.calibrate(g, rng, full_range=True)
    return g, True


def graph_par(rng):
    """One fully parallel scale MAC (SF = NF = 1: every beat completes a pixel, so the
    output credits are checked on every beat; FD 8), uint8 input, 2 groups per beat."""
    inp = Stream(4, 4, 8, "uint", 8)
    n1 = G.scalemac("sm_par", inp, 4, 4, rng, pe=4, simd=8, scale_bits=6)
    g = G.chain([n1], "smac_par")
    G.calibrate(g, rng)
    return g, False


GRAPHS = {"chain": graph_chain, "par": graph_par}


def _build(name, out: Path, pipe: int, fd: int | None = None) -> int:
    """Render graph `name` into `out` with PIPE `pipe` in the IR of every scale MAC (and FD
    `fd` patched into every cf_scalemac instance); returns the number of instances."""
    rng = np.random.default_rng(zlib.crc32(b"smac_pipe" + name.encode()))
    graph, full = GRAPHS[name](rng)
    for node in graph.nodes:
        node.pipe = pipe
    G.write_vectors(graph, out, 4, seed=0, full_range=full)
    rtl.render(graph, out, {"name": "test", "clock_mhz": 100})
    top = out / "rtl" / "cfgen_top.v"
    text = top.read_text()
    n = text.count("cf_scalemac #(")
    assert n == len(graph.nodes), "expected one cf_scalemac instance per node"
    assert text.count(f".PIPE({pipe})") == n
    if fd is not None:
        text, k = re.subn(r"(cf_scalemac #\((?:(?!\);).)*?)\.FD\(\d+\)", rf"\1.FD({fd})", text,
                          flags=re.S)
        assert k == n, k
    top.write_text(text)
    return n


def _sim(out: Path, tests, simulator="verilator", frames=4):
    return rtlsim.run(out, frames=frames, simulator=simulator, tests=list(tests),
                      perf_frames=3, pattern_frames=1, seed=0)


@pytest.mark.parametrize("name,slot", [("chain", False), ("chain", True), ("par", False)],
                         ids=["chain", "chain-slot", "par"])
def test_pipe1_bit_exact_same_interval_one_more_cycle(name, slot, tmp_path, monkeypatch):
    """PIPE 1 against PIPE 0 on the same graph and vectors: bit exact under random stalls and
    a mid-frame reset, the same interval, latency + 1 per cf_scalemac on the path. `slot`:
    one-slot output registers (cf_fifo DEPTH 1) wherever a pixel takes 8 or more beats."""
    if slot:
        monkeypatch.setattr(units.common, "OUT_SLOT_BITS", 1)
    n0 = _build(name, tmp_path / "p0", 0)
    r0 = _sim(tmp_path / "p0", ["perf"])
    assert_exact(r0)
    n1 = _build(name, tmp_path / "p1", 1)
    assert n0 == n1
    top = (tmp_path / "p1" / "rtl" / "cfgen_top.v").read_text()
    assert top.count(".PIPE(1)") == n1
    if slot and name == "chain":
        assert ".FD(1)" in top
    r1 = _sim(tmp_path / "p1", ["perf", "stalls", "reset"])
    assert_exact(r1)
    print(f"\n{name}/{'slot' if slot else 'fifo'}: PIPE 0 latency {r0['latency_cycles']} "
          f"interval {r0['interval_cycles']}; PIPE 1 latency {r1['latency_cycles']} "
          f"interval {r1['interval_cycles']} (predicted {r0['predicted_interval_cycles']})")
    assert r1["interval_cycles"] == r0["interval_cycles"], (r0["interval_cycles"],
                                                            r1["interval_cycles"])
    assert r1["latency_cycles"] == r0["latency_cycles"] + n1, (r0["latency_cycles"],
                                                               r1["latency_cycles"], n1)


@pytest.mark.parametrize("fd", [1, 2])
def test_pipe1_credit_bound_bit_exact(fd, tmp_path):
    """The fully parallel scale MAC on a 1- or 2-slot output FIFO: every beat completes a
    pixel and waits for a credit, so the credit count (FIFO occupancy plus the pixels in the
    now 4 stages before it) is what limits the rate; a miscount would overflow the FIFO (a
    lost or duplicated pixel). Bit exact under stalls and reset at PIPE 1; the interval
    grows by exactly one cycle per credit round trip (the generator's FIFO depths, 8 below 4
    beats per pixel, 2 from 4, 1 from 8, leave enough credits for full rate either way)."""
    _build("par", tmp_path / "p0", 0, fd=fd)
    r0 = _sim(tmp_path / "p0", ["perf"])
    assert_exact(r0)
    _build("par", tmp_path / "p1", 1, fd=fd)
    r1 = _sim(tmp_path / "p1", ["perf", "stalls", "reset"])
    assert_exact(r1)
    print(f"\npar FD {fd}: PIPE 0 latency {r0['latency_cycles']} interval "
          f"{r0['interval_cycles']}; PIPE 1 latency {r1['latency_cycles']} interval "
          f"{r1['interval_cycles']}")
    # credit-bound: a credit is held from the accepting beat until the pixel leaves the
    # FIFO, one cycle longer at PIPE 1, so each of the 16 pixels of a frame takes 1/FD
    # cycle more (measured: 5 and 6 cycles per credit into this test bench's sink)
    pixels = 16
    assert r1["interval_cycles"] - r0["interval_cycles"] == pixels / fd, (r0, r1)


@pytest.mark.parametrize("name", list(GRAPHS))
def test_pipe1_bit_exact_icarus(name, tmp_path):
    """PIPE 1 on a second simulator (Icarus): bit exact under random stalls and reset."""
    _build(name, tmp_path / "p1", 1)
    r1 = _sim(tmp_path / "p1", ["stalls", "reset"], simulator="icarus", frames=2)
    assert_exact(r1)
