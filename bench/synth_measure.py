"""Measured resources of a build folder: OUT/synth/resources.json from `python -m generator.flows.synth`,
or (when that driver cannot parse Yosys 0.23's `stat -json` output) the same figures computed
here from the files Yosys left in OUT/synth/."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _stat_modules(path: Path) -> dict:
    # Yosys 0.23 prints the hierarchy tree into the middle of `stat -json` output
    lines = [ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("$")]
    text = "\n".join(lines)
    text = text.replace("},\n      \"design\"", "},\n   \"design\"")
    obj, _ = json.JSONDecoder().raw_decode(text[text.index("{"):])
    mods = obj["modules"]
    for m in mods.values():
        if "cells" not in m:
            m["cells"] = m.get("num_cells_by_type", {})
    return mods


def _flatten(modules: dict, name: str, memo: dict) -> dict:
    if name not in memo:
        out = {}
        for cell, n in modules[name]["cells"].items():
            sub = _flatten(modules, cell, memo) if cell in modules else {cell: 1}
            for c, k in sub.items():
                out[c] = out.get(c, 0) + n * k
        memo[name] = out
    return memo[name]


def _top_cells(path: Path, top: str) -> dict:
    """Instance -> module type from `dump c:*` of the top (cell lines only)."""
    inst = {}
    for line in path.read_text().splitlines():
        s = line.strip()
        if s.startswith("cell "):
            parts = s.split()
            inst[parts[2].lstrip("\\")] = parts[1]
    return inst


def from_yosys_files(out: Path) -> dict:
    from generator.hw.tech.xc7 import count_cells
    syn = out / "synth"
    man = json.loads((out / "rtl" / "manifest.json").read_text())
    top = man["top"]
    modules = _stat_modules(syn / "stat.json")
    key = top if top in modules else "\\" + top
    memo = {}
    res = count_cells(_flatten(modules, key, memo))
    units, nodes = {}, {}
    for inst, mtype in _top_cells(syn / "top_cells.il", top).items():
        if mtype in modules:
            units[inst] = count_cells(_flatten(modules, mtype, memo))
    for n in man["nodes"]:
        acc = None
        for u in n["units"]:
            if u["inst"] in units:
                s = units[u["inst"]]
                acc = dict(s) if acc is None else {k: acc[k] + s[k] for k in acc}
        if acc is not None:
            nodes[n["name"]] = acc
    return {**res, "units": units, "nodes": nodes, "source": "bench/synth_measure.py"}


def measure(out, abc9: bool = False, rerun: bool = False, timeout: float = 3600) -> dict:
    """Run Yosys on a build folder (unless results exist) and return the resource figures."""
    out = Path(out)
    rj = out / "synth" / "resources.json"
    if rj.is_file() and not rerun:
        return json.loads(rj.read_text())
    if rerun or not (out / "synth" / "stat.json").is_file():
        cmd = [sys.executable, "-m", "generator.flows.synth", str(out), "--timeout", str(timeout)]
        if not abc9:
            cmd.append("--no-abc9")
        subprocess.run(cmd, capture_output=True, text=True,
                       cwd=Path(__file__).resolve().parent.parent)
    if rj.is_file():
        return json.loads(rj.read_text())
    res = from_yosys_files(out)
    rj.write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    r = measure(sys.argv[1])
    print(json.dumps({k: r[k] for k in ("LUT", "FF", "BRAM36", "DSP")}))
