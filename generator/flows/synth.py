"""Resource estimate of a build folder's RTL with Yosys `synth_xilinx`.

    python -m generator.flows.synth OUT [--timeout S] [--abc9] [--flatten]

Runs Yosys in OUT/synth/ (so the "../rtl/mem/*.hex" memory files resolve) on the sources
listed in OUT/rtl/manifest.json:

    synth_xilinx -family xc7 -noiopad -top cfgen_top [-abc9]

(ABC by default: ABC9 of Yosys 0.23 aborts on these designs with vector::_M_range_check.)

keeping the hierarchy, and writes OUT/synth/resources.json:

    LUT     LUT1..LUT6 + LUT-equivalents of distributed RAM / shift registers
            (RAM32M/RAM64M: 4, RAM32X1D/RAM64X1D: 2, RAM128X1D: 4, RAM*X1S: 1 per 64 bits,
             SRL16E/SRLC32E: 1) -- what Vivado reports as "Slice LUTs"
    LUT_logic, LUTRAM   the two parts of LUT
    FF      FDRE + FDSE + FDCE + FDPE (+ latches)
    BRAM36  RAMB36E1 + RAMB18E1 / 2 (36 Kb equivalents)
    DSP     DSP48E1
    CARRY4, MUXF7, MUXF8    for information
    units   the same figures per unit instance of the generated top (u<i>_swg, u<i>_mvu, ...)
    nodes   per graph node (its units summed)
    board   the part's capacity and utilisation when the board lists resources

Yosys is not Vivado: expect LUT counts within a factor of ~1.5 of Vivado's and exact
BRAM/DSP inference only for the patterns the library uses (docs/RTL.md).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..core import tools
from ..hw.tech.xc7 import count_cells
from ..core.errors import CfgenError

# one cell counter (generator/hw/tech/xc7.py)
summarize_cells = count_cells


def flatten_counts(modules: dict, top: str) -> dict[str, dict]:
    """Recursive primitive-cell counts of every module (submodule instances expanded)."""
    memo: dict[str, dict] = {}

    def total(name: str) -> dict:
        if name in memo:
            return memo[name]
        out: dict[str, int] = {}
        for cell, n in modules[name]["cells"].items():
            if cell in modules:
                for c, k in total(cell).items():
                    out[c] = out.get(c, 0) + n * k
            else:
                out[cell] = out.get(cell, 0) + n
        memo[name] = out
        return out

    for m in modules:
        total(m)
    return memo


def _parse_stat_text(path: Path) -> dict:
    """Per-module cell counts from Yosys `stat` text output ({module: {"cells": {...}}}).
    (Yosys 0.23's `stat -json` interleaves the hierarchy as text, so it is not parsed.)"""
    modules: dict[str, dict] = {}
    cur = None
    for line in path.read_text().splitlines():
        m = re.match(r"^=== (.+) ===$", line.strip())
        if m:
            cur = modules.setdefault(m.group(1), {"cells": {}})
            continue
        m = re.match(r"^\s{5,}(\S+)\s+(\d+)\s*$", line)
        if cur is not None and m:
            cur["cells"][m.group(1)] = cur["cells"].get(m.group(1), 0) + int(m.group(2))
    modules.pop("design hierarchy", None)
    return modules


def _parse_top_cells(path: Path) -> dict[str, str]:
    """Instance name -> module type, from an RTLIL dump of the top module's cells."""
    inst = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "cell":
            inst[parts[2].lstrip("\\")] = parts[1]
    return inst


def run(out_dir, timeout: float = 3600, abc9: bool = False, flatten: bool = False,
        log=print) -> dict:
    out = Path(out_dir).resolve()
    man_path = out / "rtl" / "manifest.json"
    if not man_path.is_file():
        raise CfgenError(f"{man_path} not found: build with the RTL backend first")
    man = json.loads(man_path.read_text())
    top = man["top"]
    syn = out / "synth"
    syn.mkdir(parents=True, exist_ok=True)
    srcs = " ".join(f"../rtl/{f}" for f in man["sources"])
    opts = "-family xc7 -noiopad" + (" -abc9" if abc9 else "") + (" -flatten" if flatten else "")
    script = "\n".join([
        f"read_verilog {srcs}",
        f"hierarchy -check -top {top}",
        f"synth_xilinx {opts} -top {top}",
        "tee -q -o stat.txt stat",
        f"select -module {top}",
        "tee -q -o top_cells.il dump c:*",
        "select -clear",
    ]) + "\n"
    (syn / "synth.ys").write_text(script)
    ys = tools.yosys()
    log(f"synth: yosys synth_xilinx {opts} on {out}/rtl (log: {syn}/yosys.log, timeout {timeout:.0f} s)")
    t0 = time.monotonic()
    logf = open(syn / "yosys.log", "w")
    proc = subprocess.Popen([str(ys), "-s", "synth.ys"], cwd=syn, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    last = ""
    try:
        for line in proc.stdout:
            logf.write(line)
            # progress: top-level pass headers, e.g. "2.26. Executing ABC9 pass."
            m = re.match(r"^(\d+\.\d+)\.\s+(Executing .*)$", line.strip())
            if m and m.group(2) != last:
                last = m.group(2)
                log(f"  [{time.monotonic() - t0:7.1f}s] {m.group(1)} {last}")
        rc = proc.wait()
    finally:
        timer.cancel()
        logf.close()
    elapsed = time.monotonic() - t0
    if rc != 0:
        if elapsed >= timeout:
            raise CfgenError(f"yosys timed out after {timeout:.0f} s (see {syn}/yosys.log)")
        tail = (syn / "yosys.log").read_text().splitlines()[-15:]
        raise CfgenError(f"yosys failed (rc {rc}); see {syn}/yosys.log:\n" + "\n".join(tail))

    modules = _parse_stat_text(syn / "stat.txt")
    key = top
    totals = flatten_counts(modules, key)
    res = summarize_cells(totals[key])
    res["cells"] = totals[key]
    units, nodes = {}, {}
    inst_types = _parse_top_cells(syn / "top_cells.il") if not flatten else {}
    for inst, mtype in inst_types.items():
        if mtype in totals:
            units[inst] = summarize_cells(totals[mtype])
            units[inst]["module"] = mtype.split("\\")[-1]
    for n in man["nodes"]:
        acc = None
        for u in n["units"]:
            if u["inst"] in units:
                s = units[u["inst"]]
                acc = {k: v for k, v in s.items() if k != "module"} if acc is None else \
                    {k: acc[k] + s[k] for k in acc}
        if acc is not None:
            nodes[n["name"]] = acc
    board = man.get("board", {})
    result = {"tool": "yosys", "version": yosys_version(ys), "command": f"synth_xilinx {opts}",
              "top": top, "seconds": round(elapsed, 1), **{k: res[k] for k in res if k != "cells"},
              "utilisation_pct": add_utilisation(res, board.get("resources")),
              "cells": res["cells"], "units": units, "nodes": nodes, "board": board}
    (syn / "resources.json").write_text(json.dumps(result, indent=2))
    return result


def yosys_version(ys) -> str:
    try:
        r = subprocess.run([str(ys), "-V"], capture_output=True, text=True, timeout=60)
        return r.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def add_utilisation(result: dict, board_resources: dict | None) -> dict:
    if not board_resources:
        return {}
    util = {}
    for k, cap in board_resources.items():
        if k in result and cap:
            util[k] = round(100.0 * result[k] / cap, 1)
    return util


def main(argv=None) -> int:
    from ..core import options
    from ..core.entry import OneLineParser, run_main

    ap = OneLineParser(prog="python -m generator.flows.synth",
                       description="Yosys synth_xilinx resource estimate of OUT/rtl")
    ap.add_argument("out", help="build folder")
    ap.add_argument("--timeout", type=options.finite_float(1, 7 * 86400), default=3600,
                    help="seconds before Yosys is killed")
    ap.add_argument("--abc9", action="store_true", help="map with ABC9 (aborts in Yosys 0.23)")
    ap.add_argument("--no-abc9", action="store_true", help="map with ABC (the default)")
    ap.add_argument("--flatten", action="store_true", help="flatten (no per-unit figures)")
    args = ap.parse_args(argv)
    return run_main(lambda: _main(args))


def _main(args) -> int:
    res = run(args.out, timeout=args.timeout, abc9=args.abc9 and not args.no_abc9, flatten=args.flatten)
    print(f"synth {args.out}: LUT {res['LUT']} (logic {res['LUT_logic']}, LUTRAM {res['LUTRAM']}), "
          f"FF {res['FF']}, BRAM36 {res['BRAM36']}, DSP {res['DSP']}  [{res['seconds']} s]")
    for name, r in res["nodes"].items():
        print(f"  {name:12s} LUT {r['LUT']:7d}  FF {r['FF']:7d}  BRAM36 {r['BRAM36']:5.1f}  DSP {r['DSP']:4d}")
    print(f"  wrote {Path(args.out) / 'synth' / 'resources.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
