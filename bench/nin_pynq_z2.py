"""Benchmark: NIN CF-16 on pynq-z2 (xc7z020, 100 MHz).

    python bench/nin_pynq_z2.py [--ckpt CKPT] [--out DIR] [--fps F | --folding FILE]
                                [--mult auto|any|dsp|dsp2|lut] [--no-sim] [--no-synth]
    make -C bench nin            (the same, with RTL simulation and Yosys)
    make -C bench nin-predict    (build and predictions only, about a minute)

Builds NIN CF-16 for pynq-z2 (an untrained `init nin --cf 16` checkpoint unless --ckpt is
given: throughput, latency, resources and bit-exactness do not depend on training), prints
the predicted interval, frames/s at 100 MHz, latency and resources, then, when the RTL
backend is installed, simulates a few frames (cocotb, Verilator) and runs Yosys, and
prints measured beside predicted. Target: >= 2,000 frames/s at 100 MHz, bit exact, within
xc7z020 (LUT <= 80 %, BRAM36 <= 140, DSP <= 220). Results: OUT/report.html and
bench/results/nin_pynq_z2.json.
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

TARGET = {"fps": 2000.0, "LUT_frac": 0.80, "BRAM36": 140, "DSP": 220}


def sh(*args, timeout=None) -> subprocess.CompletedProcess:
    print("+ " + " ".join(map(str, args)), flush=True)
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, timeout=timeout)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ckpt", default=None, help="NIN checkpoint (default: init nin --cf 16)")
    ap.add_argument("--out", default=str(REPO / "build" / "bench" / "nin_pynq_z2"))
    ap.add_argument("--fps", type=float, default=None, help="fold for this frame rate")
    ap.add_argument("--folding", default=None, help="folding JSON instead of the search")
    ap.add_argument("--mult", default="auto", choices=("auto", "any", "dsp", "dsp2", "lut"))
    ap.add_argument("--frames", type=int, default=3, help="test vectors / simulated frames")
    ap.add_argument("--no-sim", action="store_true")
    ap.add_argument("--no-synth", action="store_true")
    ap.add_argument("--simulator", default="verilator", choices=("verilator", "icarus"))
    ap.add_argument("--sim-timeout", type=float, default=4 * 3600)
    ap.add_argument("--synth-timeout", type=float, default=6 * 3600)
    args = ap.parse_args(argv)

    out = Path(args.out)
    ckpt = args.ckpt
    if ckpt is None:
        ckpt = out.parent / "nin_cf16_init.pt"
        if not ckpt.is_file():
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            if sh("-m", "generator", "init", "nin", "--cf", "16", "-o", ckpt).returncode:
                return 2
    build = ["-m", "generator", "build", ckpt, "--board", "pynq-z2", "-o", out, "--force",
             "--frames", args.frames, "--mult", args.mult]
    if args.fps:
        build += ["--fps", args.fps]
    if args.folding:
        build += ["--folding", args.folding]
    t0 = time.monotonic()
    if sh(*build).returncode:
        return 2
    build_s = time.monotonic() - t0
    rep = json.loads((out / "report.json").read_text())
    pred = rep["predicted"]
    res = {"predicted": {k: pred[k] for k in ("interval_cycles", "fps_at_clock", "latency_cycles",
                                              "resources", "folding", "multipliers", "bottleneck",
                                              "fits_budget")},
           "build_s": round(build_s, 1)}

    have_rtl = (out / "rtl" / "manifest.json").is_file()
    if have_rtl and not args.no_sim:
        t0 = time.monotonic()
        try:
            sh("-m", "generator.flows.rtlsim", out, "--simulator", args.simulator, "--tests", "perf",
               "--frames", args.frames, "--perf-frames", max(3, args.frames),
               timeout=args.sim_timeout)
        except subprocess.TimeoutExpired:
            print(f"rtlsim: timed out after {args.sim_timeout:.0f} s")
        res["sim_s"] = round(time.monotonic() - t0, 1)
    if have_rtl and not args.no_synth:
        t0 = time.monotonic()
        try:
            # ABC9 of Yosys 0.23 aborts on these designs; plain ABC works
            sh("-m", "generator.flows.synth", out, "--no-abc9", "--timeout", args.synth_timeout,
               timeout=args.synth_timeout + 600)
        except subprocess.TimeoutExpired:
            print(f"synth: timed out after {args.synth_timeout:.0f} s")
        res["synth_s"] = round(time.monotonic() - t0, 1)
    sh("-m", "generator.flows.report", out)
    rep = json.loads((out / "report.json").read_text())
    meas = rep.get("measured", {})
    res["measured"] = meas

    p, r = pred, pred["resources"]
    sim, syn = meas.get("sim") or {}, meas.get("synth") or {}
    print()
    print(f"NIN CF-16 on pynq-z2 at {p['clock_mhz']} MHz ({out})")
    print(f"  {'':24s} {'predicted':>12s} {'measured':>12s}")
    rows = [("interval (cycles)", p["interval_cycles"], sim.get("interval_cycles")),
            ("frames/s", p["fps_at_clock"], sim.get("fps_at_clock")),
            ("latency (cycles)", p["latency_cycles"], sim.get("latency_cycles"))]
    rows += [(k, r[k], syn.get(k)) for k in ("LUT", "FF", "BRAM36", "DSP")]
    for name, a, b in rows:
        fa = f"{a:12,.0f}" if a is not None else f"{'-':>12s}"
        fb = f"{b:12,.0f}" if b is not None else f"{'-':>12s}"
        print(f"  {name:24s} {fa} {fb}")
    if sim:
        print(f"  bit exact: {sim.get('bit_exact')} over {sim.get('frames')} frames ({sim.get('simulator')})")
    best = {k: (syn.get(k) if syn.get(k) is not None else r[k]) for k in ("LUT", "BRAM36", "DSP")}
    fps = sim.get("fps_at_clock") or p["fps_at_clock"]
    checks = {"fps >= 2000": fps >= TARGET["fps"],
              "LUT <= 80 %": best["LUT"] <= TARGET["LUT_frac"] * 53200,
              "BRAM36 <= 140": best["BRAM36"] <= TARGET["BRAM36"],
              "DSP <= 220": best["DSP"] <= TARGET["DSP"],
              "bit exact": bool(sim.get("bit_exact")) if sim else None}
    res["target"] = checks
    print("  target: " + ", ".join(f"{k}: {'yes' if v else ('n/a' if v is None else 'NO')}"
                                    for k, v in checks.items()))
    print(f"  report: {out / 'report.html'}")
    dest = REPO / "bench" / "results" / "nin_pynq_z2.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(res, indent=2, default=str))
    print(f"  wrote {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
