"""RTL backend: hardware graph -> Verilog top stitching the rtl/ library units.

`render(graph, out_dir, board)` writes

    out_dir/rtl/cfgen_top.v     generated top (AXI4-Stream in/out, units + FIFOs)
    out_dir/rtl/cf_*.v          copies of the library units it uses
    out_dir/rtl/mem/*.hex       weights / thresholds / scales ($readmemh, one word per line)
    out_dir/rtl/manifest.json   what the simulation and synthesis drivers need
    out_dir/sim/cfgen_tb.v      simulation wrapper: per-node golden checkers, cycle stamps
    out_dir/sim/cfgen_sim.py    the cocotb test module (copied from sim/)

Memory files are referenced as "../rtl/mem/<file>" (MEM_DIR): run simulators and Yosys
from a sibling folder of rtl/ (sim/, synth/), as generator.flows.rtlsim and generator.flows.synth do.

Every node maps to a few library units (docs/RTL.md):
    conv      cf_swg (window, replayed C_out/PE times) -> cf_mvu -> cf_fifo
              tap-parallel (SIMD = m*C_in): cf_swg (pixels) -> cf_widen (m taps, replay) -> cf_mvu
    maxpool   cf_swg (pads with the pool mask) -> cf_maxpool -> cf_fifo
    avgpool   cf_swg (pads with 0) -> cf_avgpool -> cf_fifo
    scalemac  cf_swg (k=1, replay) -> cf_scalemac -> cf_fifo
    globalsum cf_globalsum -> cf_fifo
    resadd    body (a) and shortcut (b, through a cf_fifo of the node's skip depth) ->
              cf_resadd -> cf_fifo
A stream two nodes read (a residual block's input) passes a cf_fork, one output per reader.
A window that is the identity on whole pixels (`Window.wire`: a k = 1 average pool of whole
pixels) has no cf_swg: the core reads the stream.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core import paths
from ..core import escape
from ..hw import units
from ..core.errors import BuildError
from ..hw.ir import Graph, Stream, clog2, next_pow2
from ..core.names import node_idents
from ..hw.units import avgpool, conv, resadd, scalemac
from ..hw.pipeline import PCH
from ..hw.units.common import NODE_FIFO_DEPTH

REPO = paths.REPO_ROOT
LIB_DIR = paths.RTL_LIB
TEMPLATE_DIR = paths.TEMPLATES / "rtl"
SIM_SRC_DIR = paths.SIM_SRC

TOP = "cfgen_top"
TB = "cfgen_tb"
MEM_DIR = "../rtl/mem/"
VEC_DIR = "../vectors/"
SIM_MODULE = "cfgen_sim"
MAXF = 64                    # per-frame cycle stamps kept by the test bench

# library files, in dependency order
LIBRARY = ["cf_fifo.v", "cf_rom.v", "cf_swg.v", "cf_widen.v", "cf_add.v", "cf_mvu.v", "cf_maxpool.v", "cf_avgpool.v", "cf_scalemac.v",
           "cf_globalsum.v", "cf_resadd.v", "cf_fork.v", "cf_axis_in.v", "cf_axis_out.v"]
SIM_LIBRARY = ["cf_check.v"]


# ----------------------------------------------------------------------------- helpers

def fifo_cw(depth: int) -> int:
    """Width of cf_fifo's count port."""
    return clog2(depth + 1)


def tdata_width(bits: int) -> int:
    return (bits + 7) // 8 * 8


def vhex(width: int, value: int) -> str:
    """A sized Verilog hex literal."""
    value &= (1 << width) - 1
    return f"{width}'h{value:x}"


def vstr(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def pack_words(values: np.ndarray, bits: int) -> list[str]:
    """(words, fields) integers -> hex words (MSB first); field f at [f*bits, (f+1)*bits),
    two's complement for negative values."""
    v = np.asarray(values, dtype=np.int64)
    if v.ndim == 1:
        v = v[:, None]
    nw, nf = v.shape
    total = nf * bits
    shifts = np.minimum(np.arange(bits), 63).astype(np.int64)
    bitarr = ((v[:, :, None] >> shifts) & 1).astype(np.uint8).reshape(nw, total)
    pad = (-total) % 8
    if pad:
        bitarr = np.concatenate([bitarr, np.zeros((nw, pad), np.uint8)], axis=1)
    by = np.packbits(bitarr, axis=1, bitorder="little")[:, ::-1]
    digits = (total + 3) // 4
    return [row.tobytes().hex()[-digits:] for row in by]


def write_mem(path: Path, words: list[str]) -> None:
    path.write_text("".join(w + "\n" for w in words))


# ----------------------------------------------------------------------------- plan

@dataclass
class Unit:
    module: str
    inst: str
    params: list            # [(name, verilog literal)]
    inp: str                # input stream prefix
    out: str                # output stream prefix
    out_w: int
    depth: int = 0          # cf_fifo only
    inp_b: str = ""         # cf_resadd: the second input (b, the shortcut)
    out_b: str = ""         # cf_fork: the second output

    def to_json(self) -> dict:
        d = {"module": self.module, "inst": self.inst, "params": dict(self.params),
             "in": self.inp, "out": self.out, "out_w": self.out_w}
        if self.inp_b:
            d["in_b"] = self.inp_b
        if self.out_b:
            d["out_b"] = self.out_b
        return d


@dataclass
class NodePlan:
    index: int
    name: str
    kind: str
    desc: str
    stream: str             # output stream prefix (after the node FIFO)
    out_w: int
    beats: int              # beats per frame
    cycles: int             # cycles per frame (the unit plan's)
    pipe: int = 0           # pipeline depth (the unit plan's)
    units: list = field(default_factory=list)
    mems: dict = field(default_factory=dict)   # file name -> words
    fork: Unit | None = None                   # cf_fork of the output when two nodes read it


def _swg(i: int, inp: str, win: units.Window) -> Unit:
    params = [("H", win.h), ("W", win.w), ("C", win.c), ("B", win.bits), ("K", win.k),
              ("S", win.stride), ("P", win.pad), ("SIMD", win.simd), ("NF", win.nf),
              ("PAD", vhex(win.pixel_width, win.pad_pixel)), ("DEPTH", win.depth),
              ("RSTYLE", int(win.block_ram)), ("TAPS", win.row_taps)]
    return Unit("cf_swg", f"u{i}_swg", params, inp, f"n{i}_win", win.out_width)


def _finish(i: int, units_: list, width: int, depth: int = NODE_FIFO_DEPTH) -> list:
    """Name the node's output stream n<i>, adding a FIFO when depth > 0."""
    if depth > 0:
        units_.append(Unit("cf_fifo", f"u{i}_fifo", [("W", width), ("DEPTH", depth)],
                           units_[-1].out, f"n{i}", width, depth=depth))
    else:
        units_[-1].out = f"n{i}"
    return units_


def _node_plan(i: int, p: units.Plan, desc: str, chain: list, mems: dict | None = None) -> NodePlan:
    return NodePlan(i, p.name, p.kind, desc, f"n{i}", p.out_width, p.out_beats, p.cycles,
                    p.pipe, _finish(i, chain, p.out_width), mems or {})


def plan_conv(i: int, node, inp: str, tag: str) -> NodePlan:
    p = units.plan(node)
    m: conv.Matrix = p.core
    swg = _swg(i, inp, p.window)
    chain = [swg]
    if p.widen is not None:
        # tap-parallel: whole pixels (or window rows) gathered into SIMD-wide beats, replayed
        w = p.widen
        chain.append(Unit("cf_widen", f"u{i}_widen", [("IW", w.iw), ("R", w.r), ("SF", w.sf),
                                                       ("NF", w.nf)],
                          swg.out, f"n{i}_wide", w.out_width))
    wmem = next(mm for mm in p.memories if mm.role == "weights")
    chain.append(Unit("cf_mvu", f"u{i}_mvu", [
        ("MATRIX", 0 if m.xnor else 1), ("SIMD", m.simd), ("PE", m.pe), ("KD", m.kd),
        ("CO", m.co), ("ACT", 0 if m.act == "threshold" else 1), ("OB", m.ob), ("AW", m.aw),
        ("TW", m.tw), ("FRAC", m.frac), ("FD", m.fd),
        ("WFILE", vstr(MEM_DIR + f"{tag}_w.hex")), ("WSTYLE", int(wmem.block)),
        ("PFILE", vstr(MEM_DIR + f"{tag}_p.hex")), ("MULT", 1 if m.dsp2 else 0),
        ("PIPE", m.pipe), ("PCH", PCH), ("DG", m.dg)],
        chain[-1].out, f"n{i}_core", p.out_width))
    s, o = node.inp, node.out
    desc = (f"{m.matrix} k{node.k} s{node.stride} p{node.pad} {s.c}->{o.c} {m.act} "
            f"PE={m.pe} SIMD={m.simd}{' dsp2' if m.dsp2 else ''}")
    return _node_plan(i, p, desc, chain, {
        f"{tag}_w.hex": pack_words(conv.weight_words(node, m), m.wbits),
        f"{tag}_p.hex": pack_words(conv.param_words(node, m), m.tw + 1)})


def plan_maxpool(i: int, node, inp: str, tag: str) -> NodePlan:
    p = units.plan(node)
    c = p.core
    swg = _swg(i, inp, p.window)
    core = Unit("cf_maxpool", f"u{i}_pool", [("C", c.c), ("B", c.b), ("KK", c.kk),
                                             ("INV", vhex(c.c * c.b, c.invert)), ("FD", c.fd)],
                swg.out, f"n{i}_core", p.out_width)
    return _node_plan(i, p, f"k{node.k} s{node.stride} p{node.pad} C={c.c} B={c.b}", [swg, core])


def plan_avgpool(i: int, node, inp: str, tag: str) -> NodePlan:
    p = units.plan(node)
    c: avgpool.AvgPool = p.core
    # a k = 1 pool of whole pixels (Window.wire) reads the stream itself: no cf_swg
    swg = None if p.window.wire else _swg(i, inp, p.window)
    core = Unit("cf_avgpool", f"u{i}_pool", [
        ("C", c.c), ("SIMD", c.simd), ("IB", c.ib), ("ISIGNED", int(c.isigned)),
        ("KK", c.kk), ("SW", c.sw), ("TW", c.tw), ("FD", c.fd),
        ("TFILE", vstr(MEM_DIR + f"{tag}_t.hex"))],
        swg.out if swg else inp, f"n{i}_core", p.out_width)
    desc = f"k{node.k} s{node.stride} p{node.pad} C={c.c} SIMD={c.simd}"
    return _node_plan(i, p, desc, [swg, core] if swg else [core], {
        f"{tag}_t.hex": pack_words(avgpool.threshold_words(node, c), c.tw + 1)})


def plan_scalemac(i: int, node, inp: str, tag: str) -> NodePlan:
    p = units.plan(node)
    c: scalemac.ScaleMac = p.core
    swg = _swg(i, inp, p.window)
    wmem = next(mm for mm in p.memories if mm.role == "weights")
    core = Unit("cf_scalemac", f"u{i}_smac", [
        ("IB", c.ib), ("ISIGNED", int(c.isigned)), ("SIMD", c.simd), ("PE", c.pe),
        ("CI", c.ci), ("CO", c.co), ("N", c.n), ("SCW", c.scw), ("GW", c.gw),
        ("ZW", c.zw), ("BW", c.bw), ("OB", c.ob), ("RELU", int(c.relu)), ("FD", c.fd),
        ("PIPE", c.pipe),
        ("WFILE", vstr(MEM_DIR + f"{tag}_w.hex")), ("WSTYLE", int(wmem.block)),
        ("SFILE", vstr(MEM_DIR + f"{tag}_s.hex")),
        ("BFILE", vstr(MEM_DIR + f"{tag}_b.hex"))],
        swg.out, f"n{i}_core", p.out_width)
    desc = f"{c.ci}->{c.co} n={c.n} PE={c.pe} SIMD={c.simd}"
    return _node_plan(i, p, desc, [swg, core], {
        f"{tag}_w.hex": pack_words(scalemac.weight_words(node, c), 8),
        f"{tag}_s.hex": pack_words(scalemac.scale_words(node, c), c.scw),
        f"{tag}_b.hex": pack_words(scalemac.bias_words(node, c), c.bw)})


def plan_globalsum(i: int, node, inp: str, tag: str) -> NodePlan:
    p = units.plan(node)
    c = p.core
    core = Unit("cf_globalsum", f"u{i}_gsum", [
        ("C", c.c), ("IB", c.ib), ("ISIGNED", int(c.isigned)), ("N", c.n),
        ("OB", c.ob), ("FD", c.fd)], inp, f"n{i}_core", p.out_width)
    s = node.inp
    return _node_plan(i, p, f"{s.h}x{s.w}x{s.c} -> {c.ob}-bit sums", [core])


def plan_resadd(i: int, node, inp: str, tag: str, inp_b: str = "") -> NodePlan:
    """Body `inp` on port a; the shortcut `inp_b` through the skip FIFO on port b."""
    p = units.plan(node)
    c: resadd.ResAdd = p.core
    skip = next(mm for mm in p.memories if mm.role == "skip_fifo")    # depth c.skip
    fifo = Unit("cf_fifo", f"u{i}_skip", [("W", skip.width), ("DEPTH", skip.depth)],
                inp_b, f"n{i}_skip", skip.width, depth=skip.depth)
    core = Unit("cf_resadd", f"u{i}_add", [
        ("C", c.c), ("SIMD", c.simd), ("AB", c.ab), ("ASIGNED", int(c.asigned)),
        ("BB", c.bb), ("BSIGNED", int(c.bsigned)), ("MW", c.mw), ("BW", c.bw), ("ZW", c.zw),
        ("SH", c.sh), ("OB", c.ob), ("RELU", int(c.relu)), ("FD", c.fd),
        ("PFILE", vstr(MEM_DIR + f"{tag}_p.hex"))],
        inp, f"n{i}_core", p.out_width, inp_b=fifo.out)
    desc = (f"C={c.c} SIMD={c.simd} a {'int' if c.asigned else 'uint'}{c.ab} + "
            f"b {'int' if c.bsigned else 'uint'}{c.bb} "
            f">> {c.sh}{' relu' if c.relu else ''} skip={c.skip}")
    return _node_plan(i, p, desc, [fifo, core], {
        f"{tag}_p.hex": pack_words(resadd.param_words(node, c), c.pw)})


PLANNERS = {"conv": plan_conv, "maxpool": plan_maxpool, "avgpool": plan_avgpool,
            "scalemac": plan_scalemac, "globalsum": plan_globalsum, "resadd": plan_resadd}


def _wire(graph: Graph) -> tuple[dict, dict]:
    """The streams of the graph (a DAG): ({(node index, port): stream prefix it reads},
    {source name ("" = the graph input): its cf_fork}). A node's output stream is n<i>
    (the graph input's `in`); a stream with two readers goes through a cf_fork whose
    output k (<stream>_f<k>) feeds its k-th reader in node order. On a chain every node
    reads its predecessor's stream and there is no fork."""
    index = {n.name: i for i, n in enumerate(graph.nodes)}
    ports, forks = {}, {}
    for src, readers in graph.consumers().items():
        base = f"n{index[src]}" if src else "in"
        if len(readers) <= 1:
            for r in readers:
                ports[r] = base
            continue
        for k, r in enumerate(readers):
            ports[r] = f"{base}_f{k}"
        w = graph.stream(src).beat_bits
        forks[src] = Unit("cf_fork", f"u{index[src]}_fork" if src else "u_in_fork", [("W", w)],
                          base, f"{base}_f0", w, out_b=f"{base}_f1")
    return ports, forks


def plan_graph(graph: Graph) -> list[NodePlan]:
    graph.validate()
    ports, forks = _wire(graph)
    plans = []
    for i, (node, tag) in enumerate(zip(graph.nodes, node_idents(graph))):
        if node.kind not in PLANNERS:
            raise BuildError(f"RTL backend: node kind '{node.kind}' is not supported")
        ins = [ports[(i, port)] for port in range(len(graph.sources(i)))]
        p = PLANNERS[node.kind](i, node, ins[0], tag, *ins[1:])
        p.fork = forks.get(node.name)
        plans.append(p)
    return plans


# ----------------------------------------------------------------------------- render

def _jinja():
    import jinja2
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=False, lstrip_blocks=False)
    env.globals["fifo_cw"] = fifo_cw
    env.filters.update(escape.filters())
    return env


def flag_fifo_depth(plans) -> int:
    """Depth of cf_axis_out's per-frame flag FIFO (input TLAST resynchronisation): room for
    the frames between the AXI adapters, estimated generously as two per unit plus four
    (frames overlap by a few rows per window generator). Too small a depth would only make
    cf_axis_in hold a frame's last beat (throughput), never lose a flag; 1-bit entries."""
    return next_pow2(max(4, 2 * sum(len(p.units) for p in plans) + 4))


def _stream_desc(s: Stream) -> str:
    return f"{s.h}x{s.w}x{s.c} {s.kind}{s.bits}"


def render(graph: Graph, out_dir, board=None) -> dict:
    """Write out_dir/rtl/ and out_dir/sim/; returns the manifest. `board`: a boards.Board (or a
    board dict / None, resolved by boards.as_board)."""
    from ..hw.boards import as_board
    board = as_board(board)
    out = Path(out_dir)
    rtl, mem, sim = out / "rtl", out / "rtl" / "mem", out / "sim"
    plans = plan_graph(graph)
    in_fork = _wire(graph)[1].get("")
    if mem.exists():
        shutil.rmtree(mem)
    mem.mkdir(parents=True, exist_ok=True)
    sim.mkdir(parents=True, exist_ok=True)
    for p in plans:
        for fname, words in p.mems.items():
            write_mem(mem / fname, words)

    in_w, out_w = graph.input.beat_bits, graph.output.beat_bits
    ctx = {
        "top": TOP, "graph_name": graph.name, "mem_dir": MEM_DIR,
        "in_w": in_w, "in_tw": tdata_width(in_w), "in_beats": graph.input.h * graph.input.w,
        "in_desc": _stream_desc(graph.input),
        "out_w": out_w, "out_tw": tdata_width(out_w), "out_beats": graph.output.h * graph.output.w,
        "out_desc": _stream_desc(graph.output),
        "nodes": plans, "last": plans[-1].stream, "in_fork": in_fork,
        "flag_depth": flag_fifo_depth(plans),
    }
    (rtl / f"{TOP}.v").write_text(_jinja().get_template("top.v.j2").render(**ctx))
    for f in LIBRARY + SIM_LIBRARY:
        shutil.copy2(LIB_DIR / f, rtl / f)
    shutil.copy2(SIM_SRC_DIR / f"{SIM_MODULE}.py", sim / f"{SIM_MODULE}.py")

    manifest = {
        "top": TOP, "tb": TB, "graph": graph.name,
        "sources": LIBRARY + [f"{TOP}.v"], "sim_sources": SIM_LIBRARY,
        "mem_dir": MEM_DIR,
        "input": {"width": in_w, "tdata": ctx["in_tw"], "beats": ctx["in_beats"],
                  "stream": graph.input.__dict__},
        "output": {"width": out_w, "tdata": ctx["out_tw"], "beats": ctx["out_beats"],
                   "stream": graph.output.__dict__, "node": plans[-1].name},
        "nodes": [{"index": p.index, "name": p.name, "kind": p.kind, "desc": p.desc,
                   "stream": p.stream, "width": p.out_w, "beats": p.beats,
                   "ideal_cycles": p.cycles, "cycles_per_frame": p.cycles,
                   "pipeline_depth": p.pipe, "units": [u.to_json() for u in p.units],
                   **({"fork": p.fork.to_json()} if p.fork else {})}
                  for p in plans],
        **({"input_fork": in_fork.to_json()} if in_fork else {}),
        "predicted_interval_cycles": max(p.cycles for p in plans),
        "flag_fifo_depth": ctx["flag_depth"],
        "board": {"name": board.name, "part": board.part, "family": board.family,
                  "clock_mhz": board.clock_mhz, "resources": dict(board.resources)},
    }
    (rtl / "manifest.json").write_text(json.dumps(manifest, indent=2))
    vec = out / "vectors"
    if (vec / "input.hex").is_file():
        write_tb(out)
    return manifest


def vector_frames(out_dir) -> int:
    """Frames available in out_dir/vectors (from meta.json, else from input.hex)."""
    out = Path(out_dir)
    meta = out / "vectors" / "meta.json"
    if meta.is_file():
        return int(json.loads(meta.read_text())["frames"])
    man = json.loads((out / "rtl" / "manifest.json").read_text())
    lines = sum(1 for ln in (out / "vectors" / "input.hex").read_text().split() if ln)
    return lines // man["input"]["beats"]


def write_tb(out_dir) -> Path:
    """(Re)write out_dir/sim/cfgen_tb.v for the vectors present in out_dir/vectors."""
    out = Path(out_dir)
    man = json.loads((out / "rtl" / "manifest.json").read_text())
    frames = vector_frames(out)
    if frames < 1:
        raise BuildError(f"{out}/vectors holds no frames")
    nodes = [{"index": n["index"], "name": n["name"], "stream": n["stream"], "out_w": n["width"],
              "beats": n["beats"]} for n in man["nodes"]]
    ctx = {"tb": TB, "top": man["top"], "vec_dir": VEC_DIR, "frames": frames,
           "maxf": MAXF, "maxf_bits": clog2(MAXF),
           "in_w": man["input"]["width"], "in_tw": man["input"]["tdata"],
           "in_beats": man["input"]["beats"],
           "out_w": man["output"]["width"], "out_tw": man["output"]["tdata"],
           "out_beats": man["output"]["beats"], "nodes": nodes}
    path = out / "sim" / f"{TB}.v"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = _jinja().get_template("tb.v.j2").render(**ctx)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path
