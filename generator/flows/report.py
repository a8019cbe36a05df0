"""Build report: OUT/report.html (+ the 'measured' part of OUT/report.json).

    python -m generator.flows.report OUT

Re-renders the report of a build folder, adding the figures of `make sim`
(OUT/sim/results.json) and `make synth-estimate` (OUT/synth/resources.json) beside the
predictions when they exist. Charts are inline SVG: the page needs no network and no
plotting library.
"""

from __future__ import annotations

import html
import json
import sys
from pathlib import Path

import numpy as np

from ..core import paths

from ..core.errors import CfgenError
from ..hw.ir import jsonable

TEMPLATES = paths.TEMPLATES / "report"
RESOURCES = ("LUT", "FF", "BRAM36", "DSP")
#: predicted resources shown against the board: with UltraRAM blocks where the board has
#: them or the folding uses them (a report.json written before URAM was modelled has none)
SHOWN = RESOURCES + ("URAM",)
WORD_BITS = 64     # L: bits per binary operation word in the paper's speed-up formula


# ---------------------------------------------------------------------------------------
# Numbers

def speedup(costs: list[dict], shapes: dict, L: int = WORD_BITS) -> dict:
    """The paper's theoretical speed-up of each binary layer over full precision,
    S = L*c*N_W*n / (c*N_W*n + L) (BRIEF section 1): c input channels, N_W = k*k taps,
    n filters per shared scale, L bits per binary op. Per output value a full-precision
    conv needs c*N_W multiply-adds; the CF-n binary one needs c*N_W/L binary ops plus 1/n
    of a full-precision scale multiply. The model figure weights the layers by their work."""
    rows, fp_total, cf_total = [], 0.0, 0.0
    for c in costs:
        if c.get("precision") != "xnor" or c["layer"] not in shapes:
            continue
        sh = shapes[c["layer"]]
        cin, nw, n = sh["c_in"], sh["k"] * sh["k"], int(c.get("cf") or 1)
        outs = sh["outputs"]
        s = L * cin * nw * n / (cin * nw * n + L)
        s1 = L * cin * nw / (cin * nw + L)
        rows.append({"layer": c["layer"], "c": cin, "N_W": nw, "n": n, "L": L,
                     "S": s, "S_n1": s1, "outputs": outs})
        fp_total += outs * cin * nw
        cf_total += outs * (cin * nw / L + 1.0 / n)
    model = fp_total / cf_total if cf_total else None
    return {"layers": rows, "model": model, "L": L}


def cf_savings(costs: list[dict]) -> dict:
    fp = sum(c.get("fp_multiplies", 0) for c in costs)
    fp1 = sum(c.get("fp_multiplies_filterwise", 0) for c in costs)
    sc = sum(c.get("stored_scales", 0) for c in costs)
    sc1 = sum(c.get("stored_scales_filterwise", 0) for c in costs)
    return {"fp_multiplies": fp, "fp_multiplies_filterwise": fp1,
            "stored_scales": sc, "stored_scales_filterwise": sc1,
            "fp_ratio": (fp1 / fp) if fp else None, "scale_ratio": (sc1 / sc) if sc else None}


def load_measured(out: Path) -> dict:
    """What `make sim` and `make synth-estimate` left in the build folder."""
    meas = {}
    sim = out / "sim" / "results.json"
    if sim.is_file():
        r = json.loads(sim.read_text())
        meas["sim"] = {k: r.get(k) for k in ("interval_cycles", "latency_cycles", "fps_at_clock",
                                             "bit_exact", "frames", "mismatches", "simulator")}
    syn = out / "synth" / "resources.json"
    if syn.is_file():
        r = json.loads(syn.read_text())
        meas["synth"] = {k: r.get(k) for k in RESOURCES + ("LUT_logic", "LUTRAM", "tool",
                                                          "version", "command", "seconds")}
        meas["synth"]["nodes"] = {n: {k: v.get(k) for k in RESOURCES}
                                  for n, v in (r.get("nodes") or {}).items()}
    tim = out / "timing" / "timing.json"
    if tim.is_file():
        r = json.loads(tim.read_text())
        key = f'{(r.get("net_delay_ns") or [0.9])[-1]:g}'
        per_node: dict = {}
        for inst, u in (r.get("units") or {}).items():
            if u.get("node") and (u["node"] not in per_node
                                  or u["estimate_ns"][key] > per_node[u["node"]]["ns"]):
                per_node[u["node"]] = {"ns": u["estimate_ns"][key], "unit": inst,
                                       "levels": u.get("levels"), "over": u["over_period"][key]}
        meas["timing"] = {k: r.get(k) for k in ("what", "tool", "clock_mhz", "period_ns",
                                                "worst_ns", "fmax_mhz", "meets", "flagged",
                                                "net_delay_ns", "clock_uncertainty_ns",
                                                "split", "note")}
        meas["timing"]["net_key"] = key
        meas["timing"]["nodes"] = per_node
    csim = out / "csim" / "results.json"
    if csim.is_file():
        r = json.loads(csim.read_text())
        meas["csim"] = {k: r.get(k) for k in ("bit_exact", "frames", "mismatches") if k in r}
    return meas


def _err(pred, meas):
    if pred is None or meas in (None, 0):
        return None
    return 100.0 * (pred - meas) / meas


# ---------------------------------------------------------------------------------------
# SVG charts

_PALETTE = ["#4878d0", "#ee854a", "#6acc64", "#d65f5f", "#956cb4", "#8c613c", "#dc7ec0",
            "#797979", "#d5bb67", "#82c6e2"]


def _esc(s) -> str:
    return html.escape(str(s))


def svg_cycle_balance(nodes: list[dict], measured_interval=None, width=760) -> str:
    """Horizontal bars: cycles per frame of every node, the bottleneck marked."""
    bar_h, gap, left, right = 18, 6, 110, 90
    h = len(nodes) * (bar_h + gap) + 40
    top = max(n["cycles"] for n in nodes) or 1
    scale = (width - left - right) / top
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}" '
           f'role="img" aria-label="cycles per node">']
    for i, n in enumerate(nodes):
        y = 10 + i * (bar_h + gap)
        w = max(1.0, n["cycles"] * scale)
        color = "#d65f5f" if n["cycles"] == top else "#4878d0"
        out.append(f'<text x="{left - 6}" y="{y + bar_h - 5}" text-anchor="end" '
                   f'font-size="12">{_esc(n["name"])}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}">'
                   f'<title>{_esc(n["name"])}: {n["cycles"]:,} cycles</title></rect>')
        out.append(f'<text x="{left + w + 4:.1f}" y="{y + bar_h - 5}" font-size="11">'
                   f'{n["cycles"]:,} ({100 * n["cycles"] / top:.0f}%)</text>')
    y = 10 + len(nodes) * (bar_h + gap)
    if measured_interval:
        x = left + measured_interval * scale
        out.append(f'<line x1="{x:.1f}" y1="5" x2="{x:.1f}" y2="{y}" stroke="#222" '
                   f'stroke-dasharray="4 3"/>')
        out.append(f'<text x="{x:.1f}" y="{y + 14}" font-size="11" text-anchor="middle">'
                   f'measured interval {measured_interval:,.0f}</text>')
    out.append("</svg>")
    return "".join(out)


def svg_resources(pred: dict, budget: dict, capacity: dict, measured: dict | None = None,
                  width=760) -> str:
    """Utilisation of each resource against the board: predicted, measured, budget line."""
    rows = [r for r in SHOWN if capacity.get(r)]
    pred = {r: pred.get(r, 0) for r in rows}
    bar_h, left, right = 16, 70, 150
    h = len(rows) * (2 * bar_h + 16) + 30
    full = width - left - right
    top = max([1.0] + [pred[r] / capacity[r] for r in rows]
              + [(measured or {}).get(r, 0) / capacity[r] for r in rows if measured])
    scale = full / top
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}" '
           f'role="img" aria-label="resources against the board">']
    for i, r in enumerate(rows):
        y = 8 + i * (2 * bar_h + 16)
        cap = capacity[r]
        out.append(f'<text x="{left - 6}" y="{y + bar_h + 4}" text-anchor="end" '
                   f'font-size="12">{r}</text>')
        p = pred[r] / cap
        out.append(f'<rect x="{left}" y="{y}" width="{p * scale:.1f}" height="{bar_h}" '
                   f'fill="#4878d0"><title>predicted {pred[r]:,} of {cap:,}</title></rect>')
        out.append(f'<text x="{left + p * scale + 4:.1f}" y="{y + bar_h - 4}" font-size="11">'
                   f'predicted {pred[r]:,} ({100 * p:.0f}%)</text>')
        if measured and measured.get(r) is not None:
            m = measured[r] / cap
            out.append(f'<rect x="{left}" y="{y + bar_h + 2}" width="{m * scale:.1f}" '
                       f'height="{bar_h}" fill="#ee854a"><title>Yosys {measured[r]:,}</title></rect>')
            out.append(f'<text x="{left + m * scale + 4:.1f}" y="{y + 2 * bar_h - 2}" '
                       f'font-size="11">Yosys {measured[r]:,} ({100 * m:.0f}%)</text>')
        for frac, style, label in ((1.0, "#222", "board"),
                                   ((budget.get(r) or 0) / cap, "#d65f5f", "budget")):
            if frac:
                x = left + frac * scale
                out.append(f'<line x1="{x:.1f}" y1="{y - 2}" x2="{x:.1f}" y2="{y + 2 * bar_h + 4}" '
                           f'stroke="{style}" stroke-dasharray="3 2"><title>{label}</title></line>')
    out.append(f'<text x="{left}" y="{h - 6}" font-size="11">blue: predicted, orange: Yosys, '
               f'black dashes: board capacity, red dashes: folding budget</text>')
    out.append("</svg>")
    return "".join(out)


def svg_node_resources(nodes: list[dict], capacity: dict, width=760) -> str:
    """Per node, its share of each resource of the board (small multiples)."""
    rows = [r for r in SHOWN if capacity.get(r)]
    col_w = (width - 110) / max(1, len(rows))
    bar_h, gap = 14, 5
    h = len(nodes) * (bar_h + gap) + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}" '
           f'role="img" aria-label="resources per node">']
    for j, r in enumerate(rows):
        x0 = 110 + j * col_w
        out.append(f'<text x="{x0}" y="12" font-size="12" font-weight="bold">{r}</text>')
        top = max(n["resources"].get(r, 0) for n in nodes) or 1
        for i, n in enumerate(nodes):
            y = 20 + i * (bar_h + gap)
            v = n["resources"].get(r, 0)
            w = (col_w - 60) * v / top
            out.append(f'<rect x="{x0:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                       f'fill="{_PALETTE[j % len(_PALETTE)]}"><title>{_esc(n["name"])}: {v:,}'
                       f'</title></rect>')
            out.append(f'<text x="{x0 + w + 3:.1f}" y="{y + bar_h - 3}" font-size="10">'
                       f'{v:,}</text>')
    for i, n in enumerate(nodes):
        y = 20 + i * (bar_h + gap)
        out.append(f'<text x="104" y="{y + bar_h - 3}" text-anchor="end" font-size="12">'
                   f'{_esc(n["name"])}</text>')
    out.append("</svg>")
    return "".join(out)


def svg_histogram(values: list[float], title: str, width=240, height=150, bins=12) -> str:
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return ""
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0) * 1e-3
    counts, edges = np.histogram(v, bins=min(bins, max(1, v.size)), range=(lo, hi))
    left, bottom, top = 30, 28, 22
    pw, ph = width - left - 8, height - bottom - top
    cmax = counts.max() or 1
    bw = pw / len(counts)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'role="img" aria-label="{_esc(title)}">',
           f'<text x="{width / 2}" y="14" font-size="12" text-anchor="middle">{_esc(title)}</text>']
    for i, c in enumerate(counts):
        hgt = ph * c / cmax
        out.append(f'<rect x="{left + i * bw:.1f}" y="{top + ph - hgt:.1f}" width="{bw - 1:.1f}" '
                   f'height="{hgt:.1f}" fill="#6acc64"><title>[{edges[i]:.4g}, {edges[i + 1]:.4g}): '
                   f'{c}</title></rect>')
    out.append(f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#222"/>')
    out.append(f'<text x="{left}" y="{height - 12}" font-size="10">{lo:.3g}</text>')
    out.append(f'<text x="{left + pw}" y="{height - 12}" font-size="10" text-anchor="end">{hi:.3g}</text>')
    out.append(f'<text x="{left - 4}" y="{top + 8}" font-size="10" text-anchor="end">{cmax}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{height - 2}" font-size="10" text-anchor="middle">'
               f'alpha_g ({v.size} groups)</text>')
    out.append("</svg>")
    return "".join(out)


# ---------------------------------------------------------------------------------------
# Report

def node_table(graph: dict, predicted: dict, measured: dict) -> list[dict]:
    gnodes = {n["name"]: n for n in graph["nodes"]}
    mnodes = (measured.get("synth") or {}).get("nodes") or {}
    rows = []
    for n in predicted["nodes"]:
        g = gnodes.get(n["name"], {})
        i, o = g.get("inp", {}), g.get("out", {})
        desc = n["kind"]
        if g.get("kind") == "conv":
            desc = f'{g.get("matrix")} k{g.get("k")} s{g.get("stride")} p{g.get("pad")} {g.get("act")}'
        elif g.get("kind") in ("maxpool", "avgpool"):
            desc = f'{g["kind"]} k{g.get("k")} s{g.get("stride")} p{g.get("pad")}'
        rows.append({
            "name": n["name"], "kind": n["kind"], "desc": desc,
            "inp": f'{i.get("h")}x{i.get("w")}x{i.get("c")} {i.get("kind")}{i.get("bits")}',
            "out": f'{o.get("h")}x{o.get("w")}x{o.get("c")} {o.get("kind")}{o.get("bits")}',
            "cf": g.get("n") if g.get("kind") == "scalemac" else None,
            "pe": n["pe"], "simd": n["simd"], "cycles": n["cycles"], "share": n["share"],
            "pipeline_depth": n.get("pipeline_depth"),
            "res": n["resources"], "meas": mnodes.get(n["name"]),
            "timing": ((measured.get("timing") or {}).get("nodes") or {}).get(n["name"]),
            "mult": n.get("mult"), "mem": weights_memory(n),
        })
    return rows


def weights_memory(n: dict) -> str | None:
    """Where a node's weights live, as the node table says it (UltraRAM: its blocks and that
    they are written at start-up)."""
    mem = n.get("weights_mem")
    if mem and mem.startswith("URAM"):
        blocks = n["resources"].get("URAM", 0)
        return (f"UltraRAM, {blocks} {mem} block{'s' if blocks != 1 else ''} (no initial "
                f"contents: written at start-up by the run-time weight port)")
    return mem


def _layer_cf(graph: dict) -> dict:
    """spec layer name -> CF n (from the CF cost records)."""
    return {c["layer"]: c.get("cf") for c in graph.get("meta", {}).get("cf_costs", [])}


def _layer_shapes(graph: dict) -> dict:
    """Binary layer name -> c_in, k, outputs (output values per frame), from the IR."""
    shapes = {}
    for n in graph["nodes"]:
        if n["kind"] == "conv":
            shapes[n["name"]] = {"c_in": n["inp"]["c"], "k": n["k"],
                                 "outputs": n["out"]["h"] * n["out"]["w"] * n["out"]["c"]}
    return shapes


def render(out_dir, log=print) -> Path:
    """(Re)write OUT/report.html and the 'measured' block of OUT/report.json.

    Its inputs are files of the build folder that a user or a crashed tool may have damaged:
    any malformed one is a single CfgenError line naming the folder."""
    out = Path(out_dir)
    rj = out / "report.json"
    if not rj.is_file():
        raise CfgenError(f"{rj} not found: not a cfgen build folder")
    try:
        return _render(out, rj, log)
    except (OSError, UnicodeDecodeError, ValueError, KeyError, IndexError, TypeError,
            AttributeError, RecursionError) as exc:
        detail = " ".join(str(exc).split())[:100]
        raise CfgenError(f"{out}: report.json, graph.json or a results file is damaged "
                         f"({type(exc).__name__}: {detail}); rebuild or re-run the tool") from None


def _board(out: Path, report: dict):
    """The build's boards.Board: OUT/board.json (every field, as the build resolved it), else
    report.json's board_info (resolved by boards.as_board), else None."""
    from ..hw.boards import Board, as_board
    if (out / "board.json").is_file():
        return Board.read(out / "board.json")
    info = report.get("board_info")
    return as_board(info, "report.json board_info") if info else None


def _render(out: Path, rj: Path, log) -> Path:
    import jinja2

    report = json.loads(rj.read_text())
    graph = json.loads((out / "graph.json").read_text())
    predicted = report["predicted"]
    measured = {"sim": None, "synth": None, "csim": None, "timing": None, **load_measured(out)}
    report["measured"] = {k: v for k, v in measured.items() if v is not None}
    board = _board(out, report)
    capacity = dict(board.resources) if board else {}
    budget = predicted.get("budget", {})
    costs = report.get("cf_costs", [])
    cf_of = _layer_cf(graph)
    rows = node_table(graph, predicted, measured)
    for r in rows:
        if r["kind"] == "conv":
            r["cf"] = cf_of.get(r["name"])
    sp = speedup(costs, _layer_shapes(graph))
    report["speedup"] = sp
    sim, syn = measured.get("sim") or {}, measured.get("synth") or {}
    compare = [
        {"what": "interval (cycles/frame)", "pred": predicted["interval_cycles"],
         "meas": sim.get("interval_cycles")},
        {"what": "latency (cycles)", "pred": predicted.get("latency_cycles"),
         "meas": sim.get("latency_cycles")},
        {"what": f"frames/s at {predicted['clock_mhz']} MHz", "pred": predicted["fps_at_clock"],
         "meas": sim.get("fps_at_clock")},
    ] + [{"what": r, "pred": predicted["resources"][r], "meas": syn.get(r)} for r in RESOURCES]
    if capacity.get("URAM") or predicted["resources"].get("URAM"):
        compare.append({"what": "URAM", "pred": predicted["resources"].get("URAM", 0),
                        "meas": syn.get("URAM")})
    for c in compare:
        c["err"] = _err(c["pred"], c["meas"])
    report["comparison"] = compare
    scales = report.get("scales", {})
    hists = [{"layer": k, "n": v.get("n"), "count": len(v.get("alpha", [])),
              "svg": svg_histogram(v.get("alpha", []), f"{k} (CF-{v.get('n')})")}
             for k, v in scales.items()]
    ctx = {
        "report": report, "predicted": predicted, "measured": measured, "rows": rows,
        "board": board or {"part": ""}, "capacity": capacity, "budget": budget,
        "savings": cf_savings(costs), "costs": costs, "speedup": sp, "compare": compare,
        "hists": hists,
        "svg_cycles": svg_cycle_balance(predicted["nodes"], sim.get("interval_cycles")),
        "svg_resources": svg_resources(predicted["resources"], budget, capacity,
                                       {r: syn.get(r) for r in RESOURCES} if syn else None),
        "svg_node_res": svg_node_resources(predicted["nodes"], capacity),
    }
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             undefined=jinja2.StrictUndefined, autoescape=True)
    env.filters["num"] = _num
    env.filters["pct"] = lambda v: "-" if v is None else f"{v:+.1f} %"
    page = env.get_template("report.html.j2").render(**ctx)
    (out / "report.html").write_text(page)
    rj.write_text(json.dumps(report, indent=2, default=jsonable))
    log(f"wrote {out / 'report.html'}")
    return out / "report.html"


def _num(v, digits=0):
    if v is None:
        return "-"
    if isinstance(v, float) and (digits or not v.is_integer()):
        if digits == 0 and abs(v) >= 100:
            return f"{v:,.0f}"
        return f"{v:,.{digits or 2}f}"
    if isinstance(v, (int, np.integer)) or (isinstance(v, float) and v.is_integer()):
        return f"{int(v):,}"
    return str(v)


def main(argv=None) -> int:
    from ..core.entry import OneLineParser, run_main

    ap = OneLineParser(prog="python -m generator.flows.report",
                       description="Re-render OUT/report.html with measured figures "
                                   "(OUT/sim/results.json, OUT/synth/resources.json)")
    ap.add_argument("out", help="build folder")
    args = ap.parse_args(argv)
    def body() -> int:
        render(args.out)
        return 0
    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())


def group_scale_record(ckpt) -> dict:
    """alpha_g of every binary layer (residual bodies included), recomputed from the
    checkpoint (quant.group_scales)."""
    from ..model.quant import group_scales
    from ..model.spec import walk_keys
    rec = {}
    for key, layer in walk_keys(ckpt.spec):
        if layer.get("precision") not in ("xnor", "bw") or layer["type"] not in ("conv", "linear"):
            continue
        w = ckpt.state_dict.get(f"{key}.weight")
        if w is None:
            continue
        n = int(layer.get("cf") or 1)
        alpha = group_scales(w.detach().float(), n)
        rec[layer["name"]] = {"n": n, "alpha": [float(a) for a in alpha]}
    return rec
