"""Benchmark: the timing estimate (generator/flows/timing.py) of NIN CF-16 on a board.

    python bench/timing_nin.py [--board pynq-z2] [--clock MHz] [--out DIR] [--ckpt CKPT]
    make -C bench timing-nin          (pynq-z2 at its 100 MHz)

Builds NIN CF-16 (an untrained `init nin --cf 16` checkpoint unless --ckpt: timing does not
depend on training), runs `python -m generator.flows.timing` (Yosys 0.70 synth_xilinx -abc9 + sta
per unit, Artix-7 cell delays, no placement or routing; 0.6 / 0.9 ns per net, 0.3 ns clock
uncertainty) and writes the per-unit worst paths, the implied clock and the frames/s at it
to bench/results/timing_nin_<board>[_<clock>].json. One NIN run takes tens of minutes on two
cores (the WebAssembly Yosys is ~2-3x slower than a native one); run one at a time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def sh(*args) -> int:
    print("+ " + " ".join(map(str, args)), flush=True)
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO).returncode


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--board", default="pynq-z2")
    ap.add_argument("--clock", type=float, default=None, help="build --clock (MHz)")
    ap.add_argument("--ckpt", default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--split", action=argparse.BooleanOptionalAction, default=None,
                    help="one Yosys run per unit module (default: the flow's size rule)")
    ap.add_argument("--jobs", type=int, default=None, help="parallel Yosys runs when split")
    ap.add_argument("--reuse", action="store_true",
                    help="keep an existing build folder (a split run resumes its finished units)")
    args = ap.parse_args(argv)
    tag = args.board + (f"_{args.clock:g}" if args.clock else "")
    out = Path(args.out or REPO / "build" / "bench" / f"timing_nin_{tag}")
    ckpt = Path(args.ckpt) if args.ckpt else out.parent / "nin_cf16_init.pt"
    if not ckpt.is_file():
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        if sh("-m", "generator", "init", "nin", "--cf", "16", "-o", ckpt):
            return 2
    build = ["-m", "generator", "build", ckpt, "--board", args.board, "-o", out, "--force",
             "--frames", 2]
    if args.clock:
        build += ["--clock", args.clock]
    if not (args.reuse and (out / "rtl" / "manifest.json").is_file()) and sh(*build):
        return 2
    t0 = time.monotonic()
    if sh("-m", "generator.flows.timing", out,
          *([] if args.split is None else ["--split" if args.split else "--no-split"]),
          *([] if args.jobs is None else ["--jobs", args.jobs])):
        return 2
    res = json.loads((out / "timing" / "timing.json").read_text())
    rep = json.loads((out / "report.json").read_text())["predicted"]
    interval = rep["interval_cycles"]
    key = f"{res['net_delay_ns'][-1]:g}"
    summary = {
        "board": args.board, "clock_mhz": res["clock_mhz"], "what": res["what"],
        "worst_ns": res["worst_ns"], "fmax_mhz_estimate": res["fmax_mhz"],
        "meets_clock": res["meets"], "flagged": res["flagged"],
        "interval_cycles_predicted": interval,
        "fps_at_clock": round(res["clock_mhz"] * 1e6 / interval, 1),
        "fps_at_estimated_clock": round(min(res["clock_mhz"], res["fmax_mhz"]) * 1e6 / interval, 1),
        "latency_cycles_predicted": rep.get("latency_cycles"),
        "resources_yosys070_abc9": res["resources"],
        "resources_predicted": rep.get("resources"),
        "units": {k: {"node": v.get("node"), "module": v["module"], "levels": v["levels"],
                      "cells": v["cells"], "cell_delay_ns": v["cell_delay_ns"],
                      "estimate_ns": v["estimate_ns"], "over": v["over_period"][key],
                      "start": v["start"], "end": v["end"]}
                  for k, v in sorted(res["units"].items(), key=lambda kv: -kv[1]["estimate_ns"][key])},
        "design": res["design"], "split": res.get("split"), "note": res.get("note"),
        "yosys_seconds": res["seconds"],
        "wall_seconds": round(time.monotonic() - t0, 1),
    }
    dst = REPO / "bench" / "results" / f"timing_nin_{tag}.json"
    dst.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"worst {res['worst_ns']} ns at {key} ns/net -> {res['fmax_mhz']} MHz; "
          f"{summary['fps_at_estimated_clock']:.0f} frames/s at min(clock, estimate); wrote {dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
