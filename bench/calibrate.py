"""Cost model vs Yosys 0.70, unit by unit: the calibration of generator/hw/perf.py and
generator/hw/tech/xc7.py (docs/FOLDING.md, "Calibration").

    python bench/calibrate.py [--designs narrow,wide,taps[,BUILD_FOLDER...]] [--nodes]
                              [--no-abc9] [--work DIR] [--out FILE]
    make -C bench calibrate [DESIGNS=...]      make -C bench compare OUT=BUILD_FOLDER

Builds each calibration design's RTL (the test suite's every-node chain at its three
foldings, or the graph of a build folder such as NIN CF-16's), synthesizes it with
generator.flows.synth (Yosys 0.70 synth_xilinx -abc9, hierarchy kept) and prints, per unit
instance (or with --nodes per node, all four resources) and in total, predicted / measured
figures. Writes bench/results/calibration.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from generator.backends import rtl  # noqa: E402
from generator.flows import synth  # noqa: E402
from generator.hw import perf  # noqa: E402
from generator.hw.boards import load_board  # noqa: E402
from rtl_unit_tb import graphs as G  # noqa: E402

BOARD = "pynq-z2"
# predicted part prefix -> instance suffix of the generated top
PREFIX = {"swg.": "swg", "widen.": "widen", "mvu.": "mvu", "smac.": "smac", "pool.": "pool",
          "gsum.": "gsum"}


def design(name: str):
    """A chain folding by name, or the folded graph of a build folder (python -m generator build)."""
    if name in G.BRIEF_CHAIN_FOLDINGS:
        return G.brief_chain(np.random.default_rng(0), fold=G.BRIEF_CHAIN_FOLDINGS[name])
    from generator.hw.ir import Graph
    return Graph.load(Path(name))


def node_rows(g, pred: dict, meas: dict, man: dict) -> list[dict]:
    """Per node: predicted / measured LUT, FF, BRAM36, DSP (a node's units summed)."""
    insts = {n["name"]: [u["inst"] for u in n["units"]] for n in man["nodes"]}
    rows = []
    for n in pred["nodes"]:
        m = {r: 0 for r in perf.RESOURCES}
        for inst in insts.get(n["name"], []):
            for r in perf.RESOURCES:
                m[r] += (meas["units"].get(inst) or {}).get(r, 0)
        rows.append({"node": n["name"], "pred": {r: n["resources"][r] for r in perf.RESOURCES},
                     "meas": m})
    return rows


def compare(name: str, work: Path, abc9: bool = True, nodes: bool = False, log=print) -> dict:
    g = design(name)
    out = work / Path(name).name
    board = load_board(BOARD)
    man = rtl.render(g, out, board)
    meas = synth.run(out, abc9=abc9, log=lambda *a: None)
    pred = perf.predict(g, board)
    rows = node_rows(g, pred, meas, man) if nodes else []
    for row in rows:
        p, m = row["pred"], row["meas"]
        log(f"  {row['node']:14s} " + "  ".join(f"{r} {p[r]:>8.0f} / {m[r]:<7}" for r in perf.RESOURCES))
    unit_rows = []
    for i, n in enumerate(pred["nodes"]):
        parts = n["resources"]["parts"]
        for pre, suffix in PREFIX.items():
            p = {r: sum(v[r] for k, v in parts.items() if k.startswith(pre)) for r in ("LUT", "FF")}
            m = meas["units"].get(f"u{i}_{suffix}")
            if m is None and not any(k.startswith(pre) for k in parts):
                continue
            unit_rows.append({"unit": f"{n['name']}.{suffix}", "pred": p,
                              "meas": {r: (m or {}).get(r, 0) for r in ("LUT", "FF")}})
    tot = {"pred": {r: pred["resources"][r] for r in perf.RESOURCES},
           "meas": {r: meas[r] for r in perf.RESOURCES}}
    if not nodes:
        for row in unit_rows:
            p, m = row["pred"], row["meas"]
            log(f"  {row['unit']:14s} LUT {p['LUT']:8.0f} / {m['LUT']:<6}  FF {p['FF']:8.0f} / {m['FF']:<6}")
    p, m = tot["pred"], tot["meas"]
    log(f"  {name:14s} LUT {p['LUT']:8} / {m['LUT']:<6} ({100 * (p['LUT'] - m['LUT']) / m['LUT']:+.1f} %)"
        f"  FF {p['FF']:8} / {m['FF']:<6} ({100 * (p['FF'] - m['FF']) / m['FF']:+.1f} %)"
        f"  BRAM36 {p['BRAM36']} / {m['BRAM36']}  DSP {p['DSP']} / {m['DSP']}")
    return {"design": name, "units": unit_rows, **({"nodes": rows} if nodes else {}), **tot,
            "yosys": meas["version"], "command": meas["command"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--designs", default="narrow,wide,taps")
    ap.add_argument("--nodes", action="store_true", help="per node, all four resources")
    ap.add_argument("--no-abc9", action="store_true")
    ap.add_argument("--work", default="/tmp/cfgen_calibration")
    ap.add_argument("--out", default=None, help="results file (default bench/results/calibration.json)")
    args = ap.parse_args()
    results = []
    for name in args.designs.split(","):
        print(f"{name}:", flush=True)
        results.append(compare(name, Path(args.work), abc9=not args.no_abc9, nodes=args.nodes))
    dest = Path(args.out) if args.out else REPO / "bench" / "results" / "calibration.json"
    dest.write_text(json.dumps(results, indent=1))
    print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
