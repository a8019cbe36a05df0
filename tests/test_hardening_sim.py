"""Hardening of the simulation drivers and of the AXI-stream input (issue 11).

1. `python -m generator.flows.csim` / `python -m generator.flows.rtlsim` check every vector file and
   numeric option before a compiler or simulator starts: each fault below must give exit 2,
   exactly one `error: ...` line on stderr, no traceback, and leave the build folder as it
   was (generator/flows/vectorcheck.py).
2. Input TLAST resynchronisation (docs/CONTRACT.md) on a small design (8x8x3 conv -> 2x2
   max-pool): the RTL in cocotb (short, long, one-beat and multi-frame packets between good
   frames; the interval unchanged) and the HLS top in C simulation, which must also be able
   to fail (a top that ignores TLAST).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from generator.flows import csim, rtlsim
from generator.core import tools
from generator.backends import hls, rtl
from generator.hw.ir import Stream
from rtl_unit_tb import graphs as G

REPO = Path(__file__).resolve().parent.parent
BOARD = {"name": "pynq-z2", "part": "xc7z020clg400-1", "family": "xc7", "clock_mhz": 100}
FRAMES = 8
IN_BEATS = 64


def _make(out: Path) -> None:
    rng = np.random.default_rng(3)
    n1 = G.conv("c1", Stream(8, 8, 3, "uint", 8), 4, 3, rng, pad=1, pe=2, simd=3)
    n2 = G.maxpool("mp", n1.out, 2, rng)
    graph = G.chain([n1, n2], "tiny")
    G.write_vectors(graph, out, frames=FRAMES, seed=1)
    rtl.render(graph, out, BOARD)
    hls.render(graph, out, BOARD)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hardening") / "tiny"
    _make(out)
    return out


def _tree(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*")}


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("build_*", "csim", "results*", "parts"))
    return dst


# --------------------------------------------------------------------------- faults

def _lines(p: Path) -> list[str]:
    return p.read_text().split()


def _write(p: Path, lines: list[str]) -> None:
    p.write_text("".join(f"{x}\n" for x in lines))


def f_missing(p):
    p.unlink()


def f_empty(p):
    p.write_text("")


def f_garbage(p):
    p.write_text("this is not a vector file\n")


def f_binary(p):
    p.write_bytes(b"\x00\xff\xfe\x89PNG\r\n" * 40)


def f_truncated(p):                       # 1.56 frames of input (the case)
    _write(p, _lines(p)[:int(1.56 * IN_BEATS)])


def f_one_beat_short(p):
    _write(p, _lines(p)[:-1])


def f_whole_frame_short(p):               # whole frames, but one fewer than the other files
    _write(p, _lines(p)[:-{"input.hex": IN_BEATS, "c1.hex": 64, "mp.hex": 16}[p.name]])


def f_too_wide(p):
    ls = _lines(p)
    ls[5] = "f" + ls[5]
    _write(p, ls)


def f_bad_digit(p):
    ls = _lines(p)
    ls[7] = ls[7][:-1] + "g"
    _write(p, ls)


def f_blank_line(p):
    ls = _lines(p)
    p.write_text("\n".join(ls[:3]) + "\n\n" + "\n".join(ls[3:]) + "\n")


def f_directory(p):
    p.unlink()
    p.mkdir()


FILE_FAULTS = {
    "input.hex": [f_missing, f_empty, f_garbage, f_binary, f_truncated, f_one_beat_short,
                  f_whole_frame_short, f_too_wide, f_bad_digit, f_blank_line, f_directory],
    "c1.hex": [f_missing, f_empty, f_garbage, f_one_beat_short, f_whole_frame_short, f_too_wide],
    "mp.hex": [f_missing, f_garbage, f_truncated, f_too_wide, f_binary],
}


def _meta_garbage(out):
    (out / "vectors" / "meta.json").write_text("{not json")


def _meta_frames(out):
    m = json.loads((out / "vectors" / "meta.json").read_text())
    m["frames"] = FRAMES + 2
    (out / "vectors" / "meta.json").write_text(json.dumps(m))


def _no_vectors(out):
    shutil.rmtree(out / "vectors")


def _manifest_garbage(out):
    for d in ("rtl", "hls"):
        (out / d / "manifest.json").write_text("[1, 2")


def _manifest_fields(out):
    for d in ("rtl", "hls"):
        (out / d / "manifest.json").write_text('{"top": "x"}')


FOLDER_FAULTS = [_meta_garbage, _meta_frames, _no_vectors, _manifest_garbage, _manifest_fields]

CASES = [(f"{name}-{f.__name__[2:]}", name, f) for name, fs in FILE_FAULTS.items() for f in fs] + \
    [(f.__name__[1:], None, f) for f in FOLDER_FAULTS]

CSIM_OPTS = [["--frames", "0"], ["--frames", "-1"], ["--frames", str(10**12)], ["--frames", "abc"],
             ["--frames", "1.5"], ["--frames", str(FRAMES + 1)], ["--batch", "0"], ["--batch", "-3"],
             ["--batch", str(10**12)], ["--frames", "2", "--batch", "x"]]
RTLSIM_OPTS = [["--frames", "0"], ["--frames", "-2"], ["--frames", str(10**12)], ["--frames", str(FRAMES + 1)],
               ["--perf-frames", "2"], ["--perf-frames", "64"], ["--perf-frames", str(10**12)],
               ["--pattern-frames", "0"], ["--pattern-frames", str(10**12)], ["--seed", "-1"],
               ["--seed", str(2**40)], ["--tests", "perf,bogus"], ["--simulator", "modelsim"],
               ["--frames", "ten"]]


def _driver(name):
    return {"csim": csim.main, "rtlsim": rtlsim.main}[name]


def _expect_one_error(rc, cap, before, after):
    err = cap.err
    assert rc == 2, (rc, cap.out[-2000:], err[-2000:])
    assert err.count("\n") == 1 and err.startswith("error: "), repr(err)
    assert "Traceback" not in cap.out + err
    assert after == before, sorted(set(after) ^ set(before))


@pytest.mark.parametrize("driver", ["csim", "rtlsim"])
@pytest.mark.parametrize("cid,name,fault", CASES, ids=[c[0] for c in CASES])
def test_bad_vectors_one_error_line(tiny, tmp_path, capsys, driver, cid, name, fault):
    out = _copy(tiny, tmp_path / "b")
    if name is None:
        fault(out)
    else:
        fault(out / "vectors" / name)
    before = _tree(out)
    rc = _driver(driver)([str(out), "--frames", "2"])
    _expect_one_error(rc, capsys.readouterr(), before, _tree(out))


@pytest.mark.parametrize("driver,opts", [("csim", o) for o in CSIM_OPTS] + [("rtlsim", o) for o in RTLSIM_OPTS],
                         ids=[f"csim{' '.join(o)}" for o in CSIM_OPTS] + [f"rtlsim{' '.join(o)}" for o in RTLSIM_OPTS])
def test_bad_options_one_error_line(tiny, tmp_path, capsys, driver, opts):
    out = _copy(tiny, tmp_path / "b")
    before = _tree(out)
    with pytest.raises(SystemExit) as exc:   # argparse usage errors exit from parse_args
        sys.exit(_driver(driver)([str(out), *opts]))
    _expect_one_error(exc.value.code, capsys.readouterr(), before, _tree(out))


def test_api_range_checks(tiny):
    from generator.core.errors import CfgenError
    for kw in ({"frames": 0}, {"frames": 10**12}, {"batch": 0}, {"frames": True}):
        with pytest.raises(CfgenError):
            csim.run_csim(tiny, **kw)
    for kw in ({"frames": 0}, {"perf_frames": 2}, {"pattern_frames": 10**12}, {"seed": -1},
               {"frames": 10**12}):
        with pytest.raises(CfgenError):
            rtlsim.run(tiny, **kw)


def test_good_folder_passes_the_checks(tiny):
    man, have = csim.check_inputs(tiny, FRAMES, 3)
    assert have == FRAMES and man["top"]
    _, have = rtlsim.check_inputs(tiny, frames=FRAMES)
    assert have == FRAMES


@pytest.mark.parametrize("module", ["generator.flows.csim", "generator.flows.rtlsim"])
def test_truncated_input_command_line(tiny, tmp_path, module):
    """The issue's case as a user runs it (`make csim FRAMES=2` runs this command): 1.56
    frames of input.hex is an error, not 'BIT EXACT, 1 frames'."""
    out = _copy(tiny, tmp_path / "b")
    f_truncated(out / "vectors" / "input.hex")
    before = _tree(out)
    r = subprocess.run([sys.executable, "-m", module, str(out), "--frames", "2"], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ") and "whole number" in r.stderr
    assert "Traceback" not in r.stdout + r.stderr and "BIT EXACT" not in r.stdout
    assert _tree(out) == before


# --------------------------------------------------------------------------- TLAST

@pytest.mark.sim
def test_rtl_tlast_resync_and_interval(tiny):
    """cocotb: short / long / one-beat / two-frame packets; the good frames bit exact, the
    padded ones flagged (TUSER on the TLAST beat, short_frames = 3); the resynchronising
    input adapter costs no throughput: measured interval = predicted."""
    res = rtlsim.run(tiny, frames=FRAMES, simulator="verilator", tests=["perf", "tlast"], perf_frames=4)
    t = res["tests"]["tlast"]
    assert res["bit_exact"] and t["passed"], t
    assert t["padded_frames"] == t["short_frames"] == 3 and t["output_frames"] == 9
    assert res["interval_cycles"] == res["predicted_interval_cycles"] == 1152


@pytest.mark.sim
def test_rtl_tlast_tiny_flag_fifo_icarus(tiny, tmp_path):
    """The same on Icarus with the flag FIFO cut to 2 frames (cf_axis_in then holds a frame's
    last beat until the output adapter pops a flag): still exact, nothing lost."""
    out = _copy(tiny, tmp_path / "fd2")
    top = out / "rtl" / "cfgen_top.v"
    text = top.read_text()
    fd = json.loads((out / "rtl" / "manifest.json").read_text())["flag_fifo_depth"]
    assert f".FD({fd})) u_axis_out" in text
    top.write_text(text.replace(f".FD({fd})) u_axis_out", ".FD(2)) u_axis_out"))
    res = rtlsim.run(out, frames=2, simulator="icarus", tests=["stalls", "tlast"])
    assert res["bit_exact"], res["tests"]
    assert res["tests"]["tlast"]["padded_frames"] == 3


@pytest.mark.hls
def test_hls_tlast_resync(tiny):
    res = csim.run_tlast(tiny, werror=True, quiet=True)
    assert res["passed"], res["log"]
    assert res["padded_frames"] == 3 and res["output_frames"] == 9 and res["packets"] == 7
    assert res["errors"] == res["missing_beats"] == res["extra_beats"] == res["input_left"] == 0


@pytest.mark.hls
def test_hls_tlast_check_can_fail(tiny, tmp_path):
    """A top whose input adapter ignores TLAST (the old behaviour) fails the check."""
    from generator.core.errors import CfgenError
    out = _copy(tiny, tmp_path / "old")
    hdr = out / "hls" / "include" / "cf_axis.h"
    text = hdr.read_text()
    assert text.count("if (v.last && i != BEATS - 1) pad = true;") == 1
    hdr.write_text(text.replace("if (v.last && i != BEATS - 1) pad = true;", "(void)v.last;"))
    try:
        res = csim.run_tlast(out, quiet=True)
    except CfgenError as exc:            # the top read past the end of the input stream
        assert "crashed" in str(exc)
    else:
        assert not res["passed"]
