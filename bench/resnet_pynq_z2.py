"""Benchmark: a zoo model on a board (default the CIFAR-size resnet20_bin, CF-4, on pynq-z2;
`make -C bench vgg7-zcu104`: vgg7 CF-16 on zcu104, UltraRAM and run-time weights).

    python bench/resnet_pynq_z2.py [--arch resnet20_bin] [--cf 4] [--out DIR] [--frames N]
                                   [--tests perf,stalls,reset] [--no-sim] [--synth]
    make -C bench resnet20        (the same)

Builds an untrained `init` checkpoint (throughput, latency, resources and bit-exactness do
not depend on training), prints the predicted interval, frames/s, latency, resources and
the shortcut FIFO depths, then simulates a few frames in RTL (cocotb, Verilator): bit
exact against the golden model with random valid/ready stalls and a mid-frame reset, and
the measured interval beside the predicted one. --synth adds the Yosys estimate (long).
Results: OUT/report.html and bench/results/<arch>_pynq_z2.json.
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


def sh(*args, timeout=None) -> subprocess.CompletedProcess:
    print("+ " + " ".join(map(str, args)), flush=True)
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, timeout=timeout)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="resnet20_bin")
    ap.add_argument("--cf", type=int, default=4)
    ap.add_argument("--board", default="pynq-z2")
    ap.add_argument("--out", default=None)
    ap.add_argument("--frames", type=int, default=3, help="test vectors / simulated frames")
    ap.add_argument("--tests", default="perf,stalls,reset")
    ap.add_argument("--no-sim", action="store_true")
    ap.add_argument("--synth", action="store_true")
    ap.add_argument("--sim-timeout", type=float, default=4 * 3600)
    args = ap.parse_args(argv)

    name = f"{args.arch}_{args.board.replace('-', '_')}"
    out = Path(args.out or REPO / "build" / "bench" / name)
    ckpt = out.parent / f"{args.arch}_cf{args.cf}_init.pt"
    if not ckpt.is_file():
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        if sh("-m", "generator", "init", args.arch, "--cf", args.cf, "-o", ckpt).returncode:
            return 2
    t0 = time.monotonic()
    if sh("-m", "generator", "build", ckpt, "--board", args.board, "-o", out, "--force",
          "--frames", args.frames).returncode:
        return 2
    res = {"arch": args.arch, "cf": args.cf, "board": args.board,
           "build_s": round(time.monotonic() - t0, 1)}
    graph = json.loads((out / "graph.json").read_text())
    res["skip_depths"] = {n["name"]: n["skip_depth"] for n in graph["nodes"]
                          if n["kind"] == "resadd"}
    res["runtime_weights"] = bool(graph.get("runtime_weights"))
    if not args.no_sim:
        t0 = time.monotonic()
        csim = sh("-m", "generator.flows.csim", out, "--werror")
        res["csim_bit_exact"] = csim.returncode == 0
        res["csim_s"] = round(time.monotonic() - t0, 1)
        t0 = time.monotonic()
        try:
            sh("-m", "generator.flows.rtlsim", out, "--simulator", "verilator", "--tests",
               args.tests, "--frames", args.frames, "--perf-frames", max(3, args.frames),
               "--pattern-frames", 1, timeout=args.sim_timeout)
        except subprocess.TimeoutExpired:
            print(f"rtlsim: timed out after {args.sim_timeout:.0f} s")
        res["sim_s"] = round(time.monotonic() - t0, 1)
    if args.synth:
        sh("-m", "generator.flows.synth", out)
    sh("-m", "generator.flows.report", out)
    rep = json.loads((out / "report.json").read_text())
    p = rep["predicted"]
    res["predicted"] = {k: p[k] for k in ("interval_cycles", "fps_at_clock", "latency_cycles",
                                           "resources", "folding", "bottleneck", "fits_budget")}
    meas = rep.get("measured", {})
    res["measured"] = meas
    simf = out / "sim" / "results.json"
    sim = json.loads(simf.read_text()) if simf.is_file() and not args.no_sim else {}
    res["rtl_tests"] = {k: t["passed"] for k, t in (sim.get("tests") or {}).items()}
    if sim.get("weights"):
        w = sim["weights"]
        res["weight_loads"] = {k: w.get(k) for k in ("words", "memories", "loads", "status_ok",
                                                     "load_cycles")}
    print()
    print(f"{args.arch} CF-{args.cf} on {args.board} at {p['clock_mhz']} MHz ({out})")
    rows = [("interval (cycles)", p["interval_cycles"], sim.get("interval_cycles")),
            ("frames/s", p["fps_at_clock"], sim.get("fps_at_clock")),
            ("latency (cycles)", p["latency_cycles"], sim.get("latency_cycles"))]
    rows += [(k, p["resources"][k], (meas.get("synth") or {}).get(k))
             for k in ("LUT", "FF", "BRAM36", "DSP", "URAM") if k in p["resources"]]
    print(f"  {'':24s} {'predicted':>12s} {'measured':>12s}")
    for label, a, b in rows:
        fa = f"{a:12,.0f}" if a is not None else f"{'-':>12s}"
        fb = f"{b:12,.0f}" if b is not None else f"{'-':>12s}"
        print(f"  {label:24s} {fa} {fb}")
    if "csim_bit_exact" in res:
        print(f"  C simulation bit exact: {res['csim_bit_exact']}")
    if sim:
        print(f"  RTL simulation bit exact: {sim.get('bit_exact')} over {sim.get('frames')} "
              f"frames; tests passed: {', '.join(k for k, ok in res['rtl_tests'].items() if ok)}"
              f"; failed: {', '.join(k for k, ok in res['rtl_tests'].items() if not ok) or 'none'}")
    if res["skip_depths"]:
        print(f"  shortcut FIFOs (pixels): {res['skip_depths']}")
    if res.get("weight_loads"):
        w = res["weight_loads"]
        print(f"  run-time weights: {w['words']:,} words in {w['memories']} memories, "
              f"{w['loads']} loads through the port, checksum ok: {w['status_ok']}")
    dest = REPO / "bench" / "results" / f"{name}.json"
    dest.write_text(json.dumps(res, indent=2, default=str))
    print(f"  wrote {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
