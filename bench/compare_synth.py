"""Predicted (generator/hw/perf.py) vs measured (Yosys via generator.flows.synth) resources per node.

    python bench/compare_synth.py OUT [OUT ...]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from generator.hw import perf  # noqa: E402
from generator.hw.boards import load_board  # noqa: E402
from generator.hw.ir import Graph  # noqa: E402
from synth_measure import measure  # noqa: E402


def compare(out, board="pynq-z2") -> dict:
    out = Path(out)
    g = Graph.load(out)
    rep = json.loads((out / "report.json").read_text()) if (out / "report.json").is_file() else {}
    mults = {name: {"style": f["mult"]}
             for name, f in rep.get("predicted", {}).get("folding", {}).items() if "mult" in f}
    pred = perf.predict(g, load_board(board), mults)
    meas = measure(out)
    rows = [{"node": n["name"], "pred": n["resources"], "meas": meas["nodes"].get(n["name"])}
            for n in pred["nodes"]]
    return {"rows": rows, "pred": pred["resources"], "meas": {r: meas[r] for r in perf.RESOURCES}}


def print_compare(c):
    for row in c["rows"]:
        p, m = row["pred"], row["meas"] or {}
        print(f"{row['node']:10s} " + "  ".join(f"{r} {p[r]:>7}/{m.get(r, '-'):<7}" for r in perf.RESOURCES))
    p, m = c["pred"], c["meas"]
    print("TOTAL      " + "  ".join(f"{r} {p[r]:>7}/{m[r]:<7}" for r in perf.RESOURCES))
    print("error      " + "  ".join(f"{r} {100 * (p[r] - m[r]) / m[r] if m[r] else 0:+6.1f}%        "
                                    for r in perf.RESOURCES))


if __name__ == "__main__":
    for out in sys.argv[1:]:
        print(out)
        print_compare(compare(out))
