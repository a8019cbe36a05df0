"""Synthesize single cfgen RTL library units with Yosys (calibration of the cost model, generator/hw/perf.py + generator/hw/tech/xc7.py).

    python bench/yosys_units.py --mvu-sweep     cf_mvu XNOR datapath LUTs vs SIMD x PE
    python bench/yosys_units.py --popcount      a registered XNOR + popcount alone
    python bench/yosys_units.py MODULE '{params}' ['{MEMPARAM: [words, width]}']

Each unit is synthesized alone (`synth_xilinx -family xc7 -noiopad -abc9 -flatten`) by Yosys
0.70 through the one runner generator/flows/yowasp.py, with random memory contents of the
right shape, and its cells are counted by generator/hw/tech/xc7.py's count_cells, as
generator/flows/synth.py counts them. Results are cached in $CFGEN_YOSYS_CACHE (default
/tmp/cfgen_yosys_units; the key includes the Yosys build and the script).
`synth_build_units(OUT)` synthesizes every unit of a build folder this way (one at a time
unless jobs > 1).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from generator.flows import yowasp  # noqa: E402  (the one Yosys runner)
from generator.hw.tech.xc7 import count_cells  # noqa: E402  (the one cell counter)

RTL = REPO / "rtl"
CACHE = Path(os.environ.get("CFGEN_YOSYS_CACHE", Path(tempfile.gettempdir()) / "cfgen_yosys_units"))
SYNTH = "synth_xilinx -family xc7 -noiopad -abc9"


def _quiet(*_a):
    pass


def yosys_cells(script: str, cwd: Path, name: str = "s", stat: str = "stat.json",
                timeout: float = 3600) -> dict:
    """Run `script` (relative paths only; it must end with `tee -q -o <stat> stat -json`)
    in cwd with Yosys 0.70; the top's cell counts (submodules expanded)."""
    yowasp.run_yosys(script, Path(cwd), name, timeout, log=_quiet, progress=False)
    mods = yowasp.stat_modules(Path(cwd) / stat)
    tot = yowasp.flatten_counts(mods)
    # the top: the one module no other module instantiates
    used = {c for m in mods.values() for c in m["cells"]}
    tops = [m for m in mods if m not in used]
    return tot[tops[0]] if tops else {}


def rand_words(rng, n: int, width: int) -> list[str]:
    digits = (width + 3) // 4
    out = []
    for _ in range(n):
        v = int.from_bytes(rng.bytes((width + 7) // 8), "little") & ((1 << width) - 1)
        out.append(f"{v:0{digits}x}")
    return out


def synth_unit(module: str, params: dict, mems: dict | None = None, deps=None,
               flags: str = "", seed: int = 0, cwd: str | None = None) -> dict:
    """params: Verilog parameter values (ints or literal strings). mems: param -> (words, width).
    deps: the library files the module instantiates (default: DEPS[module])."""
    deps = DEPS.get(module, ("cf_fifo.v",)) if deps is None else deps
    memtext = ""
    if cwd:
        for v in params.values():
            m = re.fullmatch(r'"(.+\.hex)"', str(v))
            if m and (Path(cwd) / m.group(1)).is_file():
                memtext += (Path(cwd) / m.group(1)).read_text()
    key = json.dumps([yowasp.YOWASP_VERSION, SYNTH, module, params, mems, flags, seed, hashlib.sha1(memtext.encode()).hexdigest(),
                      hashlib.sha1(b"".join((RTL / f).read_bytes() for f in
                                            list(deps) + [module + ".v"])).hexdigest()],
                     sort_keys=True)
    h = hashlib.sha1(key.encode()).hexdigest()[:16]
    CACHE.mkdir(parents=True, exist_ok=True)
    hit = CACHE / f"{h}.json"
    if hit.is_file():
        return json.loads(hit.read_text())
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as td:
        td = Path(td)
        work = Path(cwd) if cwd else td
        chp = []
        for k, v in params.items():
            chp.append(f"-set {k} {v}")
        for k, (n, width) in (mems or {}).items():
            f = td / f"{k}.hex"
            f.write_text("\n".join(rand_words(rng, n, width)) + "\n")
            chp.append(f'-set {k} "{os.path.relpath(f, work)}"')
        srcs = " ".join(os.path.relpath(RTL / f, work) for f in list(deps) + [module + ".v"])
        script = (f"read_verilog -defer {srcs}\n"
                  f"chparam {' '.join(chp)} {module}\n"
                  f"hierarchy -top {module}\n"
                  f"{SYNTH} -flatten {flags}\n"
                  f"tee -q -o stat.json stat -json\n")
        # a shared folder (cwd): one script / log / stat per unit
        stat = f"stat_{h}.json" if cwd else "stat.json"
        try:
            cells = yosys_cells(script.replace("stat.json", stat), work, f"u_{h}", stat)
        except Exception as exc:
            raise RuntimeError(f"yosys failed on {module} {params}: {exc}") from None
    res = {"module": module, "params": params, "cells": cells, **count_cells(cells)}
    hit.write_text(json.dumps(res))
    return res


DEPS = {"cf_swg": ("cf_fifo.v",), "cf_mvu": ("cf_fifo.v", "cf_rom.v", "cf_add.v"), "cf_scalemac": ("cf_fifo.v",),
        "cf_maxpool": ("cf_fifo.v",), "cf_avgpool": ("cf_fifo.v",),
        "cf_globalsum": ("cf_fifo.v",), "cf_fifo": (), "cf_widen": ()}


def manifest_units(build_dir) -> list[tuple[str, str, dict]]:
    """(node name, module, params) of every unit the RTL backend instantiated."""
    man = json.loads((Path(build_dir) / "rtl" / "manifest.json").read_text())
    units = []
    for n in man["nodes"]:
        for u in n["units"]:
            units.append((n["name"], u["module"], u["params"]))
    return units


def synth_build_units(build_dir, jobs: int = 1, log=print) -> list[dict]:
    """Synthesize each distinct unit of a build folder alone; one result per unit instance."""
    from concurrent.futures import ThreadPoolExecutor
    build_dir = Path(build_dir).resolve()
    cwd = build_dir / "synth_units"
    cwd.mkdir(exist_ok=True)
    units = manifest_units(build_dir)
    todo = {}
    for node, module, params in units:
        todo.setdefault(json.dumps([module, params], sort_keys=True), (module, params))

    def one(item):
        module, params = item
        r = synth_unit(module, params, deps=DEPS.get(module, ("cf_fifo.v",)), cwd=str(cwd))
        log(f"  {module:12s} LUT {r['LUT']:6d} FF {r['FF']:6d} BRAM36 {r['BRAM36']:5.1f} "
            f"DSP {r['DSP']:3d}  {json.dumps({k: v for k, v in params.items() if 'FILE' not in k})[:110]}")
        return r

    with ThreadPoolExecutor(jobs) as ex:
        done = dict(zip(todo, ex.map(one, todo.values())))
    return [{"node": node, **done[json.dumps([module, params], sort_keys=True)]}
            for node, module, params in units]


POPCOUNT_V = """
module pc #(parameter N = 64) (input clk, input [N-1:0] x, input [N-1:0] w, output reg [15:0] y);
    reg [N-1:0] xr, wr;
    wire [31:0] c = $countones(~(xr ^ wr));
    always @(posedge clk) begin xr <= x; wr <= w; y <= c[15:0]; end
endmodule
"""


def popcount_sweep(sizes=(8, 16, 32, 48, 64, 96, 128, 160)) -> dict:
    """LUTs of a registered XNOR + popcount of N bits (the table behind tech.xc7.popcount_luts)."""
    out = {}
    for n in sizes:
        with tempfile.TemporaryDirectory() as td:
            td = Path(td)
            (td / "pc.v").write_text(POPCOUNT_V)
            cells = yosys_cells(f"read_verilog pc.v\nchparam -set N {n} pc\n"
                                f"{SYNTH} -top pc\ntee -q -o stat.json stat -json\n", td)
        out[n] = count_cells(cells)["LUT"]
        print(f"N={n:4d}  LUT {out[n]:5d}  ({out[n] / n:.2f} per bit)", flush=True)
    return out


MVU_SWEEP = [(8, 4), (16, 4), (32, 2), (64, 2), (96, 1), (160, 1)]


def mvu_sweep() -> list[dict]:
    """cf_mvu (XNOR, threshold) with 512-word weight memories (block RAM, so the LUTs are the
    datapath): the measurements behind tech.xc7.C['xnor_lut_per_bit']."""
    out = []
    for simd, pe in MVU_SWEEP:
        kd, co = 64 * simd, 8 * pe
        tw = (kd + 2).bit_length() + 1
        params = {"MATRIX": 0, "SIMD": simd, "PE": pe, "KD": kd, "CO": co, "ACT": 0, "OB": 1,
                  "AW": kd.bit_length() + 1, "TW": tw, "FRAC": 0, "FD": 2}
        r = synth_unit("cf_mvu", params, {"WFILE": [8 * 64, pe * simd], "PFILE": [8, pe * (tw + 1)]})
        print(f"SIMD {simd:4d} PE {pe:2d}: LUT {r['LUT']:5d} FF {r['FF']:5d} BRAM36 {r['BRAM36']}",
              flush=True)
        out.append({"simd": simd, "pe": pe, **r})
    return out


if __name__ == "__main__":
    if sys.argv[1:2] == ["--popcount"]:
        popcount_sweep()
    elif sys.argv[1:2] == ["--mvu-sweep"]:
        mvu_sweep()
    else:
        print(json.dumps(synth_unit(sys.argv[1], json.loads(sys.argv[2]),
                                    json.loads(sys.argv[3]) if len(sys.argv) > 3 else None), indent=1))
